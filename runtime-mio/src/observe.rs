//! What the node tells its operator: role, leader and term changes (found by
//! comparing `status()` before and after each iteration), catch-up at info,
//! heartbeats and the rest of the peer chatter at debug/trace.

use chorus_core::{NodeId, PeerMsg, Role, Status};
use tracing::{debug, info, trace};

pub(crate) fn status_change(before: &Status, after: &Status) {
    if (before.role, before.term, before.leader) == (after.role, after.term, after.leader) {
        return;
    }
    let (me, term) = (after.id.0, after.term.0);
    match (after.role, after.leader) {
        (Role::Leader, _) => info!(
            "n{me} is the leader of term {term} (log at seq {}, committed {})",
            after.last_seq.0, after.commit_seq.0
        ),
        (Role::Candidate, _) if before.role != Role::Candidate => {
            info!("n{me}: election started (term {term}): no live leader")
        }
        (Role::Candidate, _) => info!("n{me} claims the leadership of term {term}"),
        (Role::Follower, Some(l)) => info!("n{me} follows leader n{} in term {term}", l.0),
        (Role::Follower, None) => info!("n{me}: no leader known (term {term})"),
    }
}

pub(crate) fn peer_msg(me: NodeId, msg: &PeerMsg) {
    let from = msg.sender().0;
    match msg {
        PeerMsg::Heartbeat {
            term, commit_seq, ..
        } => {
            debug!(
                "heartbeat from n{from} (term {}, committed {})",
                term.0, commit_seq.0
            )
        }
        PeerMsg::AppendAck { match_seq, .. } => debug!("n{from} has seq {} durably", match_seq.0),
        PeerMsg::CatchupReq { from_seq, .. } => {
            info!(
                "n{from} catches up from n{} starting at seq {}",
                me.0, from_seq.0
            )
        }
        PeerMsg::CatchupResp {
            entries, last_seq, ..
        } if !entries.is_empty() => info!(
            "catch-up: {} entries from n{from} (seq {}..={}, its log ends at {})",
            entries.len(),
            entries[0].seq_no.0,
            entries[entries.len() - 1].seq_no.0,
            last_seq.0
        ),
        PeerMsg::Election { .. } | PeerMsg::Coordinator { .. } => {
            debug!("{} from n{from} (term {})", msg.kind(), msg.term().0)
        }
        _ => trace!("{} from n{from}", msg.kind()),
    }
}
