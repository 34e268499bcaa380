//! Password hashing for accounts: argon2id (RustCrypto `argon2`), run on a
//! small pool of worker threads so that the event loop never computes a hash
//! (one takes tens of milliseconds; on the loop it would stall every client).
//!
//! Parameters (`Argon2Params`, config `argon2_memory_kib`,
//! `argon2_iterations`, `argon2_parallelism`): by default m = 19,456 KiB,
//! t = 2, p = 1 (OWASP's argon2id baseline), 16-byte random salt, 32-byte
//! output, stored as a PHC string. Verification uses the parameters stored
//! in the hash, so changing them affects new hashes only. The output
//! comparison is constant-time (`password_hash::Output`'s `PartialEq`).
//!
//! No oracle on user names: a login for an unknown (or disabled) account
//! verifies against `dummy`, a hash of a random password made at start
//! with the same parameters, so it costs what a real one costs.
//!
//! Bounds: `workers` threads (each holds `m` KiB while hashing), at most
//! `queue` jobs waiting; a job past it is refused at once (`submit` returns
//! false: the caller answers `busy`). Results are handed back through a
//! mutex-guarded queue and the loop's waker (`Runtime::on_password_results`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use mio::Waker;
use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;

/// argon2id cost parameters of new hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Argon2Params {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    fn argon2(&self) -> Result<Argon2<'static>, String> {
        let p = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| format!("argon2 parameters {self:?}: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    /// Whether argon2 accepts them (checked at start, with a clear error).
    pub fn check(&self) -> Result<(), String> {
        self.argon2().map(|_| ())
    }
}

/// A new argon2id PHC string of `password` with a random salt.
pub fn hash(password: &str, params: &Argon2Params) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    let a = params.argon2()?;
    a.hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("argon2: {e}"))
}

/// Whether `password` matches the PHC string `phc` (false if `phc` is not one).
pub fn verify(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The parameters come from `phc`; the default instance only names the
    // algorithm family.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash nobody knows the password of (for unknown users).
pub fn dummy(params: &Argon2Params) -> Result<String, String> {
    let mut pw = [0u8; 24];
    getrandom::fill(&mut pw).map_err(|e| format!("no randomness: {e}"))?;
    let text: String = pw.iter().map(|b| format!("{b:02x}")).collect();
    hash(&text, params)
}

/// What a worker is asked to do.
#[derive(Debug)]
pub enum Job {
    /// Check `password` against `phc` (the dummy hash for unknown users).
    Verify { phc: String, password: String },
    /// Hash `password` with the node's parameters.
    Hash { password: String },
}

/// A finished job, tagged with what the loop needs to continue.
#[derive(Debug)]
pub struct Done<T> {
    pub tag: T,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub enum Outcome {
    Verified(bool),
    Hashed(Result<String, String>),
}

type Queue<T> = Arc<Mutex<VecDeque<Done<T>>>>;

/// The worker pool.
#[derive(Debug)]
pub struct Pool<T: Send + 'static> {
    jobs: SyncSender<(T, Job)>,
    done: Queue<T>,
}

impl<T: Send + std::fmt::Debug + 'static> Pool<T> {
    /// Starts `workers` threads taking at most `queue` waiting jobs.
    pub fn start(workers: usize, queue: usize, params: Argon2Params, waker: Arc<Waker>) -> Pool<T> {
        let (tx, rx) = sync_channel::<(T, Job)>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let done: Queue<T> = Arc::new(Mutex::new(VecDeque::new()));
        for i in 0..workers.max(1) {
            let (rx, done, waker) = (rx.clone(), done.clone(), waker.clone());
            thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&rx, &done, &waker, params))
                .expect("spawn a password worker");
        }
        Pool { jobs: tx, done }
    }

    /// Queues a job; false if the queue is full (or the workers are gone).
    pub fn submit(&self, tag: T, job: Job) -> bool {
        match self.jobs.try_send((tag, job)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Every finished job so far.
    pub fn take_done(&self) -> Vec<Done<T>> {
        let mut q = self.done.lock().unwrap_or_else(|p| p.into_inner());
        q.drain(..).collect()
    }
}

fn work<T>(
    rx: &Mutex<Receiver<(T, Job)>>,
    done: &Mutex<VecDeque<Done<T>>>,
    waker: &Waker,
    params: Argon2Params,
) {
    loop {
        // One worker waits on the channel at a time; the others on the lock.
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((tag, job)) = next else {
            return; // the runtime is gone
        };
        let outcome = match job {
            Job::Verify { phc, password } => Outcome::Verified(verify(&phc, &password)),
            Job::Hash { password } => Outcome::Hashed(hash(&password, &params)),
        };
        done.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Done { tag, outcome });
        let _ = waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small parameters: the test checks behaviour, not cost.
    const FAST: Argon2Params = Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse", &FAST).unwrap();
        let b = hash("correct horse", &FAST).unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify(&a, "correct horse"));
        assert!(!verify(&a, "correct horsf"));
        assert!(!verify("not a hash", "x"));
        let d = dummy(&FAST).unwrap();
        assert!(!verify(&d, ""));
        assert!(Argon2Params {
            memory_kib: 1,
            ..FAST
        }
        .check()
        .is_err());
    }
}
