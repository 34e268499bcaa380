//! `chorus user add|passwd|disable NAME --connect HOST:PORT [--ca FILE]`: an
//! operator's account changes, sent to a node's client port (TLS with
//! `--ca`) as one USER_ADMIN line carrying the cluster secret, answered
//! once the change is committed (every node then agrees). The secret comes
//! from `CHORUS_CLUSTER_SECRET` or `--secret-file`; a password from
//! `CHORUS_PASSWORD` or the first line of stdin (never the command line,
//! which other users of the machine can read).
//!
//! `chorus user hash-bench` measures argon2id on this machine with the
//! node's default (or given) parameters and prints the time per hash.
//!
//! Exit status: 0 done, 1 refused by the node (its ERROR is printed), 2 a
//! usage or connection problem.

use chorus_core::client_wire::ClientLine;
use chorus_runtime_mio::password::{self, Argon2Params};
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Accounts (with `[accounts] enabled` on the nodes).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Create account NAME (password from CHORUS_PASSWORD or stdin).
    Add(Target),
    /// Set NAME's password (from CHORUS_PASSWORD or stdin).
    Passwd(Target),
    /// Disable NAME: it can no longer log in; its sessions are closed.
    Disable(Target),
    /// Time argon2id hashes on this machine (the node's defaults unless given).
    HashBench {
        #[arg(long, default_value_t = 10)]
        count: u32,
        #[arg(long)]
        memory_kib: Option<u32>,
        #[arg(long)]
        iterations: Option<u32>,
        #[arg(long)]
        parallelism: Option<u32>,
    },
}

#[derive(Debug, clap::Args)]
pub struct Target {
    /// The account name.
    pub name: String,
    /// A node's client port, e.g. 127.0.0.1:5001.
    #[arg(long)]
    pub connect: String,
    /// Verify the node (TLS) against this CA.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
    /// A file holding the cluster secret (else CHORUS_CLUSTER_SECRET).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    /// How long to wait for the commit.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

fn secret(t: &Target) -> anyhow::Result<String> {
    if let Some(f) = &t.secret_file {
        let s = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
        return Ok(s.trim_end_matches(['\n', '\r']).to_string());
    }
    std::env::var("CHORUS_CLUSTER_SECRET").map_err(|_| {
        anyhow::anyhow!("give the cluster secret: CHORUS_CLUSTER_SECRET or --secret-file")
    })
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("CHORUS_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        anyhow::bail!("no password: set CHORUS_PASSWORD or give it on stdin");
    }
    Ok(p)
}

fn admin(op: &str, t: &Target, password: Option<String>) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_millis(t.timeout_ms.max(1));
    let tls = crate::tls_dial::from_ca(t.ca.as_deref())?;
    let stream =
        crate::tls_dial::connect_str(&t.connect, &tls, timeout).map_err(anyhow::Error::msg)?;
    let line = ClientLine::UserAdmin {
        op: op.to_string(),
        user: t.name.clone(),
        password,
        secret: secret(t)?,
    };
    let mut out = chorus_core::client_wire::hello_line("chorus-user/0").into_bytes();
    out.push(b'\n');
    out.extend(serde_json::to_vec(&line)?);
    out.push(b'\n');
    let mut w = stream.try_clone()?;
    w.write_all(&out)?;
    stream.tcp().set_read_timeout(Some(timeout))?;
    let deadline = Instant::now() + timeout;
    let mut r = BufReader::new(stream);
    while Instant::now() < deadline {
        let mut buf = String::new();
        if r.read_line(&mut buf)? == 0 {
            anyhow::bail!("{} closed the connection before answering", t.connect);
        }
        let v: serde_json::Value = serde_json::from_str(&buf)?;
        match v["type"].as_str() {
            Some("ACCOUNT") => {
                println!("{op} {}: committed", t.name);
                return Ok(ExitCode::SUCCESS);
            }
            Some("ERROR") => {
                eprintln!(
                    "refused: {} ({})",
                    v["message"].as_str().unwrap_or(""),
                    v["code"]
                );
                return Ok(ExitCode::from(1));
            }
            _ => {}
        }
    }
    anyhow::bail!("no answer from {} within {timeout:?}", t.connect)
}

fn hash_bench(count: u32, params: Argon2Params) -> anyhow::Result<ExitCode> {
    params.check().map_err(anyhow::Error::msg)?;
    let mut times = Vec::new();
    for i in 0..count.max(1) {
        let t0 = Instant::now();
        let h =
            password::hash(&format!("bench password {i}"), &params).map_err(anyhow::Error::msg)?;
        times.push(t0.elapsed());
        assert!(password::verify(&h, &format!("bench password {i}")));
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "argon2id m={} KiB t={} p={}: {} hashes, median {:.1} ms, min {:.1} ms, max {:.1} ms per hash",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Cmd::Add(t) => admin("add", &t, Some(read_password()?)),
        Cmd::Passwd(t) => admin("passwd", &t, Some(read_password()?)),
        Cmd::Disable(t) => admin("disable", &t, None),
        Cmd::HashBench {
            count,
            memory_kib,
            iterations,
            parallelism,
        } => {
            let d = Argon2Params::default();
            let p = Argon2Params {
                memory_kib: memory_kib.unwrap_or(d.memory_kib),
                iterations: iterations.unwrap_or(d.iterations),
                parallelism: parallelism.unwrap_or(d.parallelism),
            };
            hash_bench(count, p)
        }
    }
}
