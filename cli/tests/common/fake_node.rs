//! A tiny in-test stand-in for `chorus node`'s client port, so the client's
//! protocol handling and failover can be tested deterministically without a
//! cluster: one shared committed log (dedup by msg_id, like the real leader),
//! any number of fake nodes serving it, each killable, and a "silent" mode in
//! which a node commits chats but tells its clients nothing (a node that dies
//! after the commit and before the acknowledgement reaches the client).
//!
//! Bounds: lines are read with a 1 MiB cap; everything is torn down when the
//! FakeNode is dropped.
#![allow(dead_code)]

use chorus_core::client_wire::{ClientLine, Delivered, NodeStatus, ServerLine};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

struct Sub {
    node: usize,
    out: TcpStream,
    room: Option<String>,
}

#[derive(Default)]
struct State {
    log: Vec<Delivered>,
    by_msg_id: BTreeMap<String, u64>,
    subs: Vec<Sub>,
    addrs: Vec<String>,
    /// CHAT lines received, per node (to check resends).
    chats_received: Vec<usize>,
}

/// The committed log shared by a set of fake nodes.
#[derive(Clone, Default)]
pub struct FakeCluster(Arc<Mutex<State>>);

impl FakeCluster {
    pub fn new() -> FakeCluster {
        FakeCluster::default()
    }

    /// Starts a fake node on an ephemeral port.
    pub fn node(&self, silent: bool) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let index = {
            let mut st = self.0.lock().unwrap();
            st.addrs.push(addr.clone());
            st.chats_received.push(0);
            st.addrs.len() - 1
        };
        let node = FakeNode {
            addr,
            index,
            cluster: self.clone(),
            dead: Arc::new(AtomicBool::new(false)),
            silent: Arc::new(AtomicBool::new(silent)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        let n = node.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if n.dead.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                n.conns.lock().unwrap().push(stream.try_clone().unwrap());
                let n2 = n.clone();
                thread::spawn(move || n2.serve(stream));
            }
        });
        node
    }

    /// Payloads of the committed log, in seq order.
    pub fn payloads(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .log
            .iter()
            .map(|d| d.payload.clone())
            .collect()
    }

    pub fn chats_received(&self, node: usize) -> usize {
        self.0.lock().unwrap().chats_received[node]
    }

    /// Commits a message from "someone else".
    pub fn commit_other(&self, room: &str, payload: &str) -> u64 {
        let mut st = self.0.lock().unwrap();
        commit(
            &mut st,
            format!("other-{payload}"),
            room.into(),
            "bob".into(),
            payload.into(),
        )
    }
}

fn commit(st: &mut State, msg_id: String, room: String, user: String, payload: String) -> u64 {
    if let Some(&seq) = st.by_msg_id.get(&msg_id) {
        return seq;
    }
    let seq = st.log.len() as u64 + 1;
    let room_seq = st.log.iter().filter(|d| d.room_id == room).count() as u64 + 1;
    let d = Delivered {
        seq_no: seq,
        room_seq,
        term: 1,
        msg_id: msg_id.clone(),
        room_id: room,
        sender_id: 7,
        user: Some(user),
        payload,
        ts_ms: 1_700_000_000_000 + seq * 1000,
    };
    st.by_msg_id.insert(msg_id, seq);
    st.log.push(d.clone());
    st.subs.retain_mut(|s| {
        if s.room.as_ref().is_some_and(|r| *r != d.room_id) {
            return true;
        }
        write_line(&mut s.out, &ServerLine::SeqChat(d.clone()))
    });
    seq
}

fn write_line(out: &mut TcpStream, line: &ServerLine) -> bool {
    let mut b = serde_json::to_vec(line).unwrap();
    b.push(b'\n');
    out.write_all(&b).is_ok()
}

/// One fake node; clones share it.
#[derive(Clone)]
pub struct FakeNode {
    pub addr: String,
    pub index: usize,
    cluster: FakeCluster,
    dead: Arc<AtomicBool>,
    silent: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl FakeNode {
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Closes every connection and stops accepting (as a crashed node).
    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `dead` and drops the listener.
        let _ = TcpStream::connect(&self.addr);
        let mut st = self.cluster.0.lock().unwrap();
        let me = self.index;
        st.subs.retain(|s| s.node != me);
    }

    fn serve(&self, stream: TcpStream) {
        let mut out = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut r).take(1 << 20).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if self.dead.load(Ordering::SeqCst) {
                return;
            }
            let Ok(line) = serde_json::from_slice::<ClientLine>(&buf) else {
                continue;
            };
            let silent = self.silent.load(Ordering::SeqCst);
            let mut st = self.cluster.0.lock().unwrap();
            match line {
                ClientLine::Hello { .. } => {
                    let hello = chorus_core::client_wire::NodeHello {
                        node_id: self.index as u64 + 1,
                        proto: chorus_core::client_wire::PROTO,
                        max_line_bytes: 1 << 20,
                        max_id_bytes: 256,
                        history_limit: 1000,
                    };
                    write_line(&mut out, &ServerLine::Hello(hello));
                }
                ClientLine::Chat {
                    msg_id,
                    payload,
                    room_id,
                    user,
                    ..
                } => {
                    st.chats_received[self.index] += 1;
                    let seq = commit(
                        &mut st,
                        msg_id.clone(),
                        room_id,
                        user.unwrap_or_default(),
                        payload,
                    );
                    if !silent {
                        write_line(
                            &mut out,
                            &ServerLine::ChatAck {
                                msg_id,
                                seq_no: seq,
                            },
                        );
                    }
                }
                ClientLine::Subscribe {
                    from_seq, room_id, ..
                } => {
                    if silent {
                        continue;
                    }
                    let from = from_seq.unwrap_or(st.log.len() as u64 + 1).max(1);
                    for d in st.log.iter().skip(from as usize - 1) {
                        if room_id.as_ref().is_none_or(|r| *r == d.room_id) {
                            write_line(&mut out, &ServerLine::SeqChat(d.clone()));
                        }
                    }
                    st.subs.push(Sub {
                        node: self.index,
                        out: out.try_clone().unwrap(),
                        room: room_id,
                    });
                }
                ClientLine::Status {} => {
                    let n = st.log.len() as u64;
                    let status = NodeStatus {
                        node_id: self.index as u64 + 1,
                        role: "leader".into(),
                        term: 1,
                        leader: Some(self.index as u64 + 1),
                        leader_addr: Some(self.addr.clone()),
                        commit_seq: n,
                        log_commit: n,
                        log_last: n,
                        members: st.addrs.clone(),
                    };
                    write_line(&mut out, &ServerLine::Status(status));
                }
                // The fake node keeps no rooms: these get no answer.
                ClientLine::History { .. }
                | ClientLine::List {}
                | ClientLine::Join { .. }
                | ClientLine::Part { .. }
                | ClientLine::Topic { .. }
                | ClientLine::Nick { .. }
                | ClientLine::Who { .. } => {}
            }
        }
    }
}
