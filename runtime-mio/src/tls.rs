//! TLS settings of a node: its certificate and key, and the cluster CA, turned
//! into the rustls configs of both sides of its connections.
//!
//! One port serves clients and peers, so the server side *asks* for a client
//! certificate and accepts a connection without one (a chat client); a
//! certificate that is presented must chain to the cluster CA, or the
//! handshake fails. A peer handshake (HELLO) is then accepted only on a
//! connection that presented one (`links.rs`). The dialing side presents the
//! node certificate and checks the acceptor's against the CA and the host
//! name it dialed. TLS 1.3 only: every end is chorus, so nothing older is
//! needed. A peer's certificate must also name the node id it claims
//! (`node_name`). Crypto provider: ring (see runtime-mio/PROTOCOL.md, "TLS").
//!
//! Invariant: the files are read at start and on `reload` only; a reload that
//! fails leaves the previous settings in force (the node keeps serving).

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a node's TLS material lives (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// The node's certificate chain (the node certificate first).
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The cluster CA: peers' certificates must chain to it.
    pub ca: PathBuf,
}

/// The rustls configs built from `TlsPaths`.
#[derive(Clone, Debug)]
pub struct TlsContext {
    pub server: Arc<ServerConfig>,
    /// For the HTTP port (https, wss): the same certificate, no client
    /// certificate asked (a browser asked for one may prompt its user), and
    /// ALPN `http/1.1` (the only HTTP it speaks).
    pub http_server: Arc<ServerConfig>,
    /// For dialing peers: presents our certificate, checks theirs.
    pub client: Arc<ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    // rustls 0.23.48 deprecates ring's provider only for lacking post-quantum
    // key exchange; the choice and its cost are in runtime-mio/PROTOCOL.md.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read TLS {what} {}: {e}", path.display()))
}

/// Every certificate of a PEM file (at least one).
pub fn load_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("TLS {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "TLS {what} {}: no PEM certificate in it",
            path.display()
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read("key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("TLS key {}: {e}", path.display()))
}

/// A trust store holding the CA certificates of `path`.
pub fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in load_certs("CA", path)? {
        roots
            .add(c)
            .map_err(|e| format!("TLS CA {}: {e}", path.display()))?;
    }
    Ok(roots)
}

/// A client config trusting `ca`, presenting `identity` (cert, key) if given.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, String> {
    let roots = load_roots(ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs("certificate", cert)?, load_key(key)?)
            .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The name (a DNS subject alternative name) that says a certificate is node
/// `id`'s: `chorus certs node N` always includes `nodeN.chorus`. A peer link
/// is accepted only when the certificate on it carries the name of the id the
/// peer claims, so a node's key cannot be used to speak as another node.
pub fn node_name(id: u64) -> String {
    format!("node{id}.chorus")
}

/// Whether the (already CA-verified) chain `certs` is node `id`'s.
pub fn is_node_cert(certs: Option<&[CertificateDer<'_>]>, id: u64) -> bool {
    let Some(leaf) = certs.and_then(|c| c.first()) else {
        return false;
    };
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(leaf) else {
        return false;
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from(node_name(id)) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

impl TlsContext {
    /// Reads the files and builds both configs; any problem is one line.
    pub fn load(paths: &TlsPaths) -> Result<TlsContext, String> {
        let roots = Arc::new(load_roots(&paths.ca)?);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("TLS CA {}: {e}", paths.ca.display()))?;
        let bad_pair = |e: rustls::Error| {
            format!(
                "TLS certificate {} with key {}: {e}",
                paths.cert.display(),
                paths.key.display()
            )
        };
        let certs = load_certs("certificate", &paths.cert)?;
        let key = load_key(&paths.key)?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(bad_pair)?;
        // Browsers and curl speak TLS 1.2 too; the HTTP port serves them.
        let mut http_server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(bad_pair)?;
        http_server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = client_config(&paths.ca, Some((&paths.cert, &paths.key)))?;
        Ok(TlsContext {
            server: Arc::new(server),
            http_server: Arc::new(http_server),
            client,
        })
    }
}
