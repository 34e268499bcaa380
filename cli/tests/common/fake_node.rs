//! A tiny in-test stand-in for `chorus node`'s client port, so the client's
//! protocol handling and failover can be tested deterministically without a
//! cluster: one shared committed log (dedup by msg_id, like the real leader),
//! any number of fake nodes serving it, each killable, and a "silent" mode in
//! which a node commits chats but tells its clients nothing (a node that dies
//! after the commit and before the acknowledgement reaches the client).
//!
//! Rooms and people (runtime-mio/PROTOCOL.md) as far as a client needs
//! them: HELLO's `user`, JOIN/PART/TOPIC/NICK acknowledged and pushed as
//! ROOM_EVENT to the room's subscribers, WHO (everyone named on a live
//! connection is online), LIST with members and topics, SUBSCRIBE of many
//! rooms, HISTORY pages by room_seq. HELLO and the rooms lines are read as
//! JSON values and answered with `json!`, so that the fake checks the
//! protocol's shape as written down rather than the client's own types.
//!
//! Bounds: lines are read with a 1 MiB cap; everything is torn down when the
//! FakeNode is dropped.
#![allow(dead_code)]

use chorus_core::client_wire::{ClientLine, Delivered, NodeStatus, ServerLine};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

struct Sub {
    node: usize,
    /// The connection (one subscription each: a new SUBSCRIBE replaces it).
    conn: u64,
    out: TcpStream,
    /// Empty: every room.
    rooms: Vec<String>,
}

impl Sub {
    fn wants(&self, room: &str) -> bool {
        self.rooms.is_empty() || self.rooms.iter().any(|r| r == room)
    }
}

#[derive(Default)]
struct State {
    log: Vec<Delivered>,
    by_msg_id: BTreeMap<String, u64>,
    subs: Vec<Sub>,
    /// Room → members; room → topic.
    members: BTreeMap<String, BTreeSet<String>>,
    topics: BTreeMap<String, String>,
    /// Room commands applied, by msg_id (a resend is applied once).
    applied: BTreeSet<String>,
    /// Live connections' names (connection → name): who is online.
    names: BTreeMap<u64, String>,
    next_conn: u64,
    /// Every room command received (to check resends), as (type, msg_id).
    commands: Vec<(String, String)>,
    /// Every HISTORY page asked, as (room, before, limit).
    pages: Vec<(String, Option<u64>, Option<usize>)>,
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

impl FakeCluster {
    /// Room commands received by any node, as (type, msg_id).
    pub fn commands(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().commands.clone()
    }

    /// HISTORY pages asked of any node, as (room, before, limit).
    pub fn pages(&self) -> Vec<(String, Option<u64>, Option<usize>)> {
        self.0.lock().unwrap().pages.clone()
    }

    pub fn members(&self, room: &str) -> Vec<String> {
        let st = self.0.lock().unwrap();
        st.members
            .get(room)
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn topic(&self, room: &str) -> Option<String> {
        self.0.lock().unwrap().topics.get(room).cloned()
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
        if !s.wants(&d.room_id) {
            return true;
        }
        write_line(&mut s.out, &ServerLine::SeqChat(d.clone()))
    });
    seq
}

fn write_line(out: &mut TcpStream, line: &impl serde::Serialize) -> bool {
    let mut b = serde_json::to_vec(line).unwrap();
    b.push(b'\n');
    out.write_all(&b).is_ok()
}

/// Pushes a ROOM_EVENT to the room's subscribers.
fn push_event(st: &mut State, room: &str, mut event: Value) {
    event["type"] = json!("ROOM_EVENT");
    event["room_id"] = json!(room);
    event["seq_no"] = json!(st.log.len() as u64 + 1);
    event["term"] = json!(1);
    event["ts_ms"] = json!(1_700_000_000_000u64);
    st.subs
        .retain_mut(|s| !s.wants(room) || write_line(&mut s.out, &event));
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches('#')
        .to_string()
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
        let conn = {
            let mut st = self.cluster.0.lock().unwrap();
            st.next_conn += 1;
            st.next_conn
        };
        self.serve_conn(conn, stream);
        let mut st = self.cluster.0.lock().unwrap();
        st.names.remove(&conn);
        st.subs.retain(|s| s.conn != conn);
    }

    fn serve_conn(&self, conn: u64, stream: TcpStream) {
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
            let Ok(v) = serde_json::from_slice::<Value>(&buf) else {
                continue;
            };
            let silent = self.silent.load(Ordering::SeqCst);
            let mut st = self.cluster.0.lock().unwrap();
            if self.rooms_line(&mut st, conn, &v, &mut out, silent) {
                continue;
            }
            let Ok(line) = serde_json::from_value::<ClientLine>(v) else {
                continue;
            };
            self.core_line(&mut st, conn, line, &mut out, silent);
        }
    }

    /// Handles HELLO and the rooms lines; false for any other line.
    fn rooms_line(
        &self,
        st: &mut State,
        conn: u64,
        v: &Value,
        out: &mut TcpStream,
        silent: bool,
    ) -> bool {
        let kind = v["type"].as_str().unwrap_or_default().to_string();
        let msg_id = text(v, "msg_id");
        let room = text(v, "room_id");
        let me = st.names.get(&conn).cloned().unwrap_or_default();
        match kind.as_str() {
            "HELLO" => {
                if let Some(u) = v["user"].as_str() {
                    st.names.insert(conn, u.to_string());
                }
                let hello = chorus_core::client_wire::NodeHello {
                    node_id: self.index as u64 + 1,
                    proto: chorus_core::client_wire::PROTO,
                    max_line_bytes: 1 << 20,
                    max_id_bytes: 256,
                    history_limit: 1000,
                    accounts: false,
                    guests: true,
                    registration: false,
                };
                write_line(out, &ServerLine::Hello(hello));
                return true;
            }
            "WHO" => {
                let online: BTreeSet<&String> = st.names.values().collect();
                let members: Vec<Value> = st
                    .members
                    .get(&room)
                    .into_iter()
                    .flatten()
                    .map(|m| json!({"user": m, "online": online.contains(m)}))
                    .collect();
                let topic = st.topics.get(&room).cloned().unwrap_or_default();
                let who = json!({"type": "WHO", "room_id": room, "topic": topic,
                    "members": members, "truncated": false});
                write_line(out, &who);
                return true;
            }
            "JOIN" | "PART" | "TOPIC" | "NICK" => {}
            _ => return false,
        }
        st.commands.push((kind.clone(), msg_id.clone()));
        if st.applied.insert(msg_id.clone()) {
            match kind.as_str() {
                "JOIN" => {
                    st.members
                        .entry(room.clone())
                        .or_default()
                        .insert(me.clone());
                    push_event(
                        st,
                        &room,
                        json!({"event": "join", "user": me, "msg_id": msg_id}),
                    );
                }
                "PART" => {
                    if let Some(m) = st.members.get_mut(&room) {
                        m.remove(&me);
                    }
                    push_event(
                        st,
                        &room,
                        json!({"event": "leave", "user": me, "msg_id": msg_id}),
                    );
                }
                "TOPIC" => {
                    let topic = v["topic"].as_str().unwrap_or_default().to_string();
                    st.topics.insert(room.clone(), topic.clone());
                    let e = json!({"event": "topic", "user": me, "topic": topic, "msg_id": msg_id});
                    push_event(st, &room, e);
                }
                _ => {
                    let name = text(v, "name");
                    let rooms: Vec<String> = st
                        .members
                        .iter()
                        .filter(|(_, m)| m.contains(&me))
                        .map(|(r, _)| r.clone())
                        .collect();
                    for r in rooms {
                        let m = st.members.get_mut(&r).unwrap();
                        m.remove(&me);
                        m.insert(name.clone());
                        let e =
                            json!({"event": "nick", "user": me, "name": name, "msg_id": msg_id});
                        push_event(st, &r, e);
                    }
                    st.names.insert(conn, name);
                }
            }
        }
        if !silent {
            let seq_no = st.log.len() as u64 + 1;
            write_line(out, &ServerLine::ChatAck { msg_id, seq_no });
        }
        true
    }

    fn core_line(
        &self,
        st: &mut State,
        conn: u64,
        line: ClientLine,
        out: &mut TcpStream,
        silent: bool,
    ) {
        match line {
            // Answered by `rooms_line` before a line gets here.
            ClientLine::Hello { .. }
            | ClientLine::Join { .. }
            | ClientLine::Part { .. }
            | ClientLine::Topic { .. }
            | ClientLine::Nick { .. }
            | ClientLine::Who { .. }
            | ClientLine::Kick { .. }
            | ClientLine::Login { .. }
            | ClientLine::Register { .. }
            | ClientLine::UserAdmin { .. } => {}
            ClientLine::Chat {
                msg_id,
                payload,
                room_id,
                user,
                ..
            } => {
                st.chats_received[self.index] += 1;
                let user = st.names.get(&conn).cloned().or(user).unwrap_or_default();
                let seq = commit(st, msg_id.clone(), room_id, user, payload);
                if !silent {
                    write_line(
                        out,
                        &ServerLine::ChatAck {
                            msg_id,
                            seq_no: seq,
                        },
                    );
                }
            }
            ClientLine::Subscribe {
                from_seq,
                room_id,
                rooms,
            } => {
                if silent {
                    return;
                }
                let rooms = if rooms.is_empty() {
                    room_id.into_iter().collect()
                } else {
                    rooms
                };
                let sub = Sub {
                    node: self.index,
                    conn,
                    out: out.try_clone().unwrap(),
                    rooms,
                };
                let from = from_seq.unwrap_or(st.log.len() as u64 + 1).max(1);
                for d in st.log.iter().skip(from as usize - 1) {
                    if sub.wants(&d.room_id) {
                        write_line(out, &ServerLine::SeqChat(d.clone()));
                    }
                }
                st.subs.retain(|s| s.conn != conn);
                st.subs.push(sub);
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
                    log_first: 1,
                    snapshot_seq: 0,
                    snapshot_installs: 0,
                    members: st.addrs.clone(),
                    http_members: Vec::new(),
                };
                write_line(out, &ServerLine::Status(status));
            }
            ClientLine::History {
                room_id,
                before,
                limit,
                ..
            } => {
                if silent {
                    return;
                }
                // Only what the client asks: a page of one room below `before`.
                let room = room_id.unwrap_or_default();
                st.pages.push((room.clone(), before, limit));
                let before = before.unwrap_or(u64::MAX);
                let chats: Vec<&Delivered> = st
                    .log
                    .iter()
                    .filter(|d| d.room_id == room && d.room_seq < before)
                    .collect();
                let skip = chats.len().saturating_sub(limit.unwrap_or(1000));
                for d in &chats[skip..] {
                    write_line(out, &ServerLine::SeqChat((*d).clone()));
                }
                let n = st.log.len() as u64;
                let end = ServerLine::HistoryEnd {
                    next_seq: n + 1,
                    commit_seq: n,
                    first_seq: None,
                    first_room_seq: None,
                };
                write_line(out, &end);
            }
            ClientLine::List {} => {
                let mut rooms: BTreeSet<String> = st.members.keys().cloned().collect();
                rooms.extend(st.log.iter().map(|d| d.room_id.clone()));
                let online: BTreeSet<&String> = st.names.values().collect();
                let list: Vec<Value> = rooms
                    .iter()
                    .map(|r| {
                        let members = st.members.get(r).cloned().unwrap_or_default();
                        json!({
                            "room_id": r,
                            "messages": st.log.iter().filter(|d| &d.room_id == r).count(),
                            "members": members.len(),
                            "online": members.iter().filter(|m| online.contains(m)).count(),
                            "topic": st.topics.get(r).cloned().unwrap_or_default(),
                        })
                    })
                    .collect();
                write_line(
                    out,
                    &json!({"type": "ROOMS", "rooms": list, "truncated": false}),
                );
            }
        }
    }
}
