//! The harness's private network: one network namespace per node
//! (`chorusx-n1` …), each with a veth pair whose host end is enslaved to one
//! bridge (`chorusx-br`, 10.77.0.254/24 in the root namespace, where the
//! harness's clients live); node i is 10.77.0.i. Faults are nftables rules in
//! a table of our own (`inet chorusx`) inside the node namespaces.
//! With the proxy (`proxy.rs`), the bridge also carries node i's alias
//! 10.77.0.(100+i), and a NAT table (`ip chorusx_nat`) in every node's
//! namespace sends its connections to another node's address to that node's
//! alias, where the proxy listens; the fault rules name both addresses.
//!
//! Invariants: every object we create carries the `chorusx` prefix, and only
//! such objects are ever removed; a host-wide lock file allows one harness at
//! a time, so whatever carries the prefix when we hold the lock is a leftover
//! of an earlier run (a harness killed with SIGKILL) and is removed then,
//! including processes still running inside those namespaces (by PID, from
//! `ip netns pids`). `Drop` tears everything down, also on panic.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Prefix of every namespace, link and nft table the harness creates.
pub const PREFIX: &str = "chorusx";
/// The bridge (in the root namespace).
pub const BRIDGE: &str = "chorusx-br";
/// The harness's own address on the bridge (clients and STATUS polls).
pub const HOST_ADDR: &str = "10.77.0.254";
/// Only one harness at a time owns the prefix.
const LOCK_PATH: &str = "/run/chorus-chaos.lock";

/// Namespace of node `id` (1-based).
pub fn ns_name(id: u64) -> String {
    format!("{PREFIX}-n{id}")
}

/// Address of node `id` (1-based) on the bridge.
pub fn node_ip(id: u64) -> String {
    format!("10.77.0.{id}")
}

/// Node `id`'s alias on the bridge: the proxy listens there for peers
/// dialing `id`, and dials `id` from there when `id` is the dialer.
pub fn alias_ip(id: u64) -> String {
    format!("10.77.0.{}", 100 + id)
}

/// The NAT table that routes peer connections through the proxy.
const NAT_TABLE: &str = "chorusx_nat";

/// Runs a command, failing with its stderr.
fn run(cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {cmd} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs a command and returns its stdout ("" on failure).
fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Fails with an actionable message unless we are root with ip and nft.
pub fn preflight() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!(
            "chorus chaos needs root: it creates network namespaces, a bridge and nftables \
             rules (run it with sudo, or as root in a disposable VM or container)"
        );
    }
    for (tool, pkg) in [("ip", "iproute2"), ("nft", "nftables")] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !ok {
            bail!("chorus chaos needs `{tool}`: apt-get install -y {pkg}");
        }
    }
    Ok(())
}

/// True if `strace` runs (power-loss faults need it).
pub fn has_strace() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The host-wide lock (held while the harness runs).
pub fn lock() -> Result<File> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .with_context(|| format!("cannot open {LOCK_PATH}"))?;
    if f.try_lock().is_err() {
        let owner = std::fs::read_to_string(LOCK_PATH).unwrap_or_default();
        bail!(
            "another chorus chaos is running (pid {}); wait for it to finish",
            owner.trim()
        );
    }
    f.set_len(0)?;
    (&f).write_all(std::process::id().to_string().as_bytes())?;
    Ok(f)
}

/// Our namespaces that exist now (any node count).
fn our_namespaces() -> Vec<String> {
    output("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{PREFIX}-")))
        .map(str::to_string)
        .collect()
}

/// Our links in the root namespace (veth host ends; not the bridge).
fn our_links() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&format!("{PREFIX}-h")))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes leftovers of an earlier harness run (call with the lock held):
/// processes inside our namespaces (SIGKILL by PID), the namespaces, the bridge.
/// Returns how many objects were removed.
pub fn remove_stale() -> usize {
    let mut removed = 0;
    for ns in our_namespaces() {
        for pid in output("ip", &["netns", "pids", &ns]).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                if let Some(p) = rustix::process::Pid::from_raw(p) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    removed += 1;
                }
            }
        }
        if run("ip", &["netns", "del", &ns]).is_ok() {
            removed += 1;
        }
    }
    // Host ends of veth pairs (deleting one deletes its peer at once; a
    // namespace's own cleanup is asynchronous and may lag behind).
    for link in our_links() {
        if run("ip", &["link", "del", &link]).is_ok() {
            removed += 1;
        }
    }
    if Path::new(&format!("/sys/class/net/{BRIDGE}")).exists()
        && run("ip", &["link", "del", BRIDGE]).is_ok()
    {
        removed += 1;
    }
    removed
}

/// The private network; torn down on drop.
#[derive(Debug)]
pub struct Net {
    nodes: u64,
}

impl Net {
    /// Creates the bridge and one namespace per node.
    pub fn create(nodes: u64) -> Result<Net> {
        let taken = output("ip", &["-4", "route", "show", "10.77.0.0/24"]);
        if !taken.trim().is_empty() {
            bail!("10.77.0.0/24 is already routed on this machine ({}); chorus chaos needs it for its private bridge", taken.trim());
        }
        let net = Net { nodes };
        run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
        run(
            "ip",
            &["addr", "add", &format!("{HOST_ADDR}/24"), "dev", BRIDGE],
        )?;
        run("ip", &["link", "set", BRIDGE, "up"])?;
        for id in 1..=nodes {
            let ns = ns_name(id);
            let host_end = format!("{PREFIX}-h{id}");
            let peer_end = format!("{PREFIX}-p{id}");
            run("ip", &["netns", "add", &ns])?;
            run(
                "ip",
                &[
                    "link", "add", &host_end, "type", "veth", "peer", "name", &peer_end,
                ],
            )?;
            run("ip", &["link", "set", &peer_end, "netns", &ns])?;
            run("ip", &["link", "set", &host_end, "master", BRIDGE, "up"])?;
            run("ip", &["-n", &ns, "link", "set", &peer_end, "name", "eth0"])?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{}/24", node_ip(id)),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Replaces node `id`'s fault rules: drop everything from `deaf_to`
    /// (incoming), everything to `mute_to` (outgoing), and `loss_permille`
    /// of incoming packets at random.
    pub fn set_rules(
        &self,
        id: u64,
        deaf_to: &[u64],
        mute_to: &[u64],
        loss_permille: u32,
    ) -> Result<()> {
        // Both addresses: direct packets come from node_ip, proxied ones
        // from (and go to) alias_ip.
        let set = |ids: &[u64]| {
            ids.iter()
                .flat_map(|&i| [node_ip(i), alias_ip(i)])
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut input = String::new();
        if !deaf_to.is_empty() {
            input.push_str(&format!("    ip saddr {{ {} }} drop\n", set(deaf_to)));
        }
        if loss_permille > 0 {
            input.push_str(&format!(
                "    numgen random mod 1000 < {loss_permille} drop\n"
            ));
        }
        let mut output_rules = String::new();
        if !mute_to.is_empty() {
            output_rules.push_str(&format!("    ip daddr {{ {} }} drop\n", set(mute_to)));
        }
        let script = format!(
            "table inet {PREFIX} {{}}\ndelete table inet {PREFIX}\n\
             table inet {PREFIX} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n{input}  }}\n\
             \x20 chain output {{\n    type filter hook output priority 0; policy accept;\n{output_rules}  }}\n}}\n"
        );
        nft(&ns_name(id), &script)
    }

    /// Puts the proxy between the nodes: node aliases on the bridge, and in
    /// every node's namespace a DNAT of connections to another node's
    /// port to that node's alias (where `proxy::Proxy` listens). Peer
    /// addresses learned at run time (JOIN) are the real ones, so they are
    /// caught by the same rule. Fails if the kernel has no NAT.
    pub fn route_peers_through_proxy(&self, port: u16) -> Result<()> {
        for id in 1..=self.nodes {
            run(
                "ip",
                &[
                    "addr",
                    "add",
                    &format!("{}/24", alias_ip(id)),
                    "dev",
                    BRIDGE,
                ],
            )?;
        }
        for id in 1..=self.nodes {
            let mut rules = String::new();
            for j in (1..=self.nodes).filter(|&j| j != id) {
                rules.push_str(&format!(
                    "    ip daddr {} tcp dport {port} dnat to {}:{port}\n",
                    node_ip(j),
                    alias_ip(j)
                ));
            }
            let script = format!(
                "table ip {NAT_TABLE} {{\n  chain out {{\n    type nat hook output priority -100; policy accept;\n{rules}  }}\n}}\n"
            );
            nft(&ns_name(id), &script)?;
        }
        Ok(())
    }

    /// Removes every fault rule of node `id`.
    pub fn clear_rules(&self, id: u64) -> Result<()> {
        nft(
            &ns_name(id),
            &format!("table inet {PREFIX} {{}}\ndelete table inet {PREFIX}\n"),
        )
    }
}

/// Loads an nft script inside namespace `ns`.
fn nft(ns: &str, script: &str) -> Result<()> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run nft")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft in {ns} failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Drop for Net {
    fn drop(&mut self) {
        for id in 1..=self.nodes {
            let _ = run("ip", &["link", "del", &format!("{PREFIX}-h{id}")]);
            let _ = run("ip", &["netns", "del", &ns_name(id)]);
        }
        let _ = run("ip", &["link", "del", BRIDGE]);
    }
}
