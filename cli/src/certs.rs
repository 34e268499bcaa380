//! `chorus certs init DIR` and `chorus certs node N --dir DIR [--host H]...`:
//! a local certificate authority for one cluster and node certificates signed
//! by it (rcgen, ECDSA P-256), as PEM files a node's `[tls]` section names.
//!
//! Files: `ca.pem` (give it to clients as `--ca`), `ca.key` (keep it: anyone
//! holding it can mint node certificates), `node<N>.pem`, `node<N>.key`.
//! Keys are written mode 0600. A node certificate names `nodeN.chorus` (its
//! id: peers check it), `localhost`, `127.0.0.1`, `::1` and every `--host`,
//! since a peer or a client checks the name it dialed against it. Existing files are never overwritten.
//!
//! The node certificate is signed without parsing `ca.pem` back: the CA's
//! name and key-identifier method are fixed here, so the issuer is rebuilt
//! from `ca.key` alone (which is why `certs node` only signs with a CA made by
//! `certs init`).

use anyhow::{bail, Context};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use time::{Duration, OffsetDateTime};

/// The CA's subject, also the issuer of every node certificate.
const CA_NAME: &str = "chorus cluster CA";
/// Validity of the CA and of node certificates (days).
const CA_DAYS: i64 = 3650;
const NODE_DAYS: i64 = 825;

/// Make a cluster CA and node certificates for TLS.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Create a new CA in DIR (ca.pem, ca.key).
    Init {
        /// Directory to create the CA in (created if missing).
        dir: PathBuf,
    },
    /// Create node N's certificate and key (nodeN.pem, nodeN.key), signed by
    /// the CA in --dir.
    Node {
        /// The node id.
        id: u64,
        /// The directory holding the CA (from `certs init`).
        #[arg(long)]
        dir: PathBuf,
        /// A host name or IP the node is reached at (repeatable);
        /// nodeN.chorus, localhost, 127.0.0.1 and ::1 are always included.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, CA_NAME);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(CA_DAYS);
    Ok(p)
}

/// Writes `text` to a new file (never over an existing one), `mode` on Unix.
fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {} (does it already exist?)", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// `certs init`: a new CA in `dir`.
pub fn init(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    if cert.exists() || key.exists() {
        bail!(
            "{} already holds a CA; use another directory or remove ca.pem and ca.key",
            dir.display()
        );
    }
    let kp = KeyPair::generate()?;
    let ca = ca_params()?.self_signed(&kp)?;
    write_new(&key, &kp.serialize_pem(), 0o600)?;
    write_new(&cert, &ca.pem(), 0o644)?;
    Ok(())
}

/// `certs node`: node `id`'s certificate for `hosts` (plus the loopback names).
pub fn node(id: u64, dir: &Path, hosts: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let ca_key_path = dir.join("ca.key");
    let ca_key_pem = std::fs::read_to_string(&ca_key_path).with_context(|| {
        format!(
            "cannot read {} (run `chorus certs init {}` first)",
            ca_key_path.display(),
            dir.display()
        )
    })?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .with_context(|| format!("{} is not a private key", ca_key_path.display()))?;
    let issuer = Issuer::new(ca_params()?, ca_key);
    let mut names: Vec<String> = vec![
        chorus_runtime_mio::tls::node_name(id),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let mut p = CertificateParams::new(names)?;
    p.distinguished_name
        .push(DnType::CommonName, format!("chorus node {id}"));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // One certificate serves both ends of a peer link: it accepts and dials.
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(NODE_DAYS);
    let kp = KeyPair::generate()?;
    let cert = p.signed_by(&kp, &issuer)?;
    let (cert_path, key_path) = node_files(dir, id);
    write_new(&key_path, &kp.serialize_pem(), 0o600)?;
    write_new(&cert_path, &cert.pem(), 0o644)?;
    Ok((cert_path, key_path))
}

/// Where `certs node` puts node `id`'s certificate and key.
pub fn node_files(dir: &Path, id: u64) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("node{id}.pem")),
        dir.join(format!("node{id}.key")),
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Cmd::Init { dir } => {
            init(&dir)?;
            println!(
                "CA written: {0}/ca.pem (give it to clients: --ca {0}/ca.pem) and {0}/ca.key (keep it private)",
                dir.display()
            );
        }
        Cmd::Node { id, dir, hosts } => {
            let (cert, key) = node(id, &dir, &hosts)?;
            println!(
                "node {id}: {} and {}; in its config:\n[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}",
                cert.display(),
                key.display(),
                cert.display().to_string(),
                key.display().to_string(),
                dir.join("ca.pem").display().to_string()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_chains_to_its_ca_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        assert!(node(1, &ca, &[]).is_err(), "no CA yet");
        init(&ca).unwrap();
        let err = init(&ca).unwrap_err().to_string();
        assert!(err.contains("already holds a CA"), "{err}");
        let (cert, key) = node(2, &ca, &["db.example".to_string()]).unwrap();
        assert!(node(2, &ca, &[]).is_err(), "node 2's files exist");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // rustls takes the pair and the CA as a node identity (that peers
        // verify it against the CA is tests/tls_security.rs).
        let paths = chorus_runtime_mio::TlsPaths {
            cert,
            key,
            ca: ca.join("ca.pem"),
        };
        chorus_runtime_mio::TlsContext::load(&paths).unwrap();
    }
}
