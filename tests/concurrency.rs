//! Many kernels, CLIs and jobs on one token cache at once: real processes
//! (children of this test binary) and threads racing on one expired M2M
//! cache make exactly one token request, all get the same token, and the
//! file is valid JSON at every moment. A lock holder that is killed does not
//! block the others.

mod support;

use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use carto_auth::CartoAuth;
use support::{ChildSession, FakeCarto, Fault, Gate, child_scenario};

const PROCESSES: usize = 16;

/// A child: says READY, waits for a line on stdin (the start signal, so that
/// all start at once), logs in with M2M and prints the token it got.
fn child_main() {
    // The parent waits on the crate's "waiting for the lock" record.
    support::log_to_stderr();
    if child_scenario().as_deref() == Some("m2m-at-signal") {
        println!("\nREADY");
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).unwrap();
    }
    let started = Instant::now();
    let creds = std::env::var("CARTO_TEST_CREDS").unwrap();
    let cache = std::env::var("CARTO_TEST_CACHE").unwrap();
    match CartoAuth::m2m(creds)
        .cache_filepath(cache)
        .login()
        .and_then(|a| a.get_access_token())
    {
        // The token is printed only because this is a test of which token
        // each process got; the fake issued it.
        Ok(token) => println!("\nRESULT ok {token} {}", started.elapsed().as_millis()),
        Err(e) => println!("\nRESULT err {e}"),
    }
}

fn env(fake: &FakeCarto, creds: &Path, cache: &Path) -> Vec<(String, String)> {
    let mut env = fake.env();
    env.push(("CARTO_TEST_CREDS".into(), creds.display().to_string()));
    env.push(("CARTO_TEST_CACHE".into(), cache.display().to_string()));
    env
}

fn expired_cache(fake: &FakeCarto, cache: &Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Inside the 60 s margin: expired for every reader.
    std::fs::write(cache, format!(r#"{{"api_base_url": "{}", "access_token": "old-token", "expiration": {}, "client_id": "{}"}}"#, fake.api_base_url(), now + 10, support::M2M_ID)).unwrap();
}

/// Reads the cache file over and over until stopped; every read must be a
/// whole cache (the old one or the new one). Returns how many reads were made.
fn watch(cache: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut reads = 0;
        while !stop.load(Ordering::SeqCst) {
            let text = std::fs::read_to_string(&cache)
                .unwrap_or_else(|e| panic!("read {reads}: the cache vanished: {e}"));
            let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("read {reads}: partial or invalid cache ({e}): {text:?}")
            });
            for key in ["api_base_url", "access_token", "expiration"] {
                assert!(
                    json.get(key).is_some(),
                    "read {reads}: {key} missing in {text}"
                );
            }
            reads += 1;
            // Sampling, not waiting: leave the two cores to the racers.
            std::thread::yield_now();
        }
        reads
    })
}

#[test]
fn sixteen_processes_on_an_expired_cache_make_one_token_request() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    // A token endpoint that answers when the test says: whoever gets the
    // lock first holds it until all the others wait behind it.
    let gate = Gate::default();
    fake.fault("/oauth/token", Fault::Hold(gate.clone()));
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    expired_cache(&fake, &cache);
    let env = env(&fake, &creds, &cache);

    let mut children: Vec<ChildSession> = (0..PROCESSES)
        .map(|_| test.session("m2m-at-signal", dir.path(), &env))
        .collect();
    for child in &mut children {
        child.wait_line(Duration::from_secs(60), |l| l == "READY");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(cache.clone(), stop.clone());
    let started = Instant::now();
    for child in &mut children {
        child.write_line("go");
    }
    fake.wait_requests("/oauth/token", 1, Duration::from_secs(60));
    support::wait_until(
        Duration::from_secs(60),
        "the others to wait for the lock",
        || {
            children
                .iter_mut()
                .map(|c| c.has_line(|l| l.contains("is locked by another holder; waiting")))
                .filter(|&waiting| waiting)
                .count()
                == PROCESSES - 1
        },
    );
    gate.open();
    let results: Vec<String> = children
        .iter_mut()
        .map(|c| c.result(Duration::from_secs(60)).0)
        .collect();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let reads = watcher.join().expect("a reader saw a partial cache file");

    let issued = fake.issued_tokens();
    assert_eq!(
        fake.requests("/oauth/token").len(),
        1,
        "exactly one token request for {PROCESSES} processes; results: {results:#?}"
    );
    assert_eq!(issued.len(), 1);
    for result in &results {
        assert!(
            result.starts_with(&format!("ok {} ", issued[0])),
            "every process gets the one new token: {result}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    assert_eq!(json["access_token"], issued[0].as_str());
    assert!(reads > 10, "the reader barely ran ({reads} reads)");
    eprintln!(
        "{PROCESSES} processes: 1 token request, all got the same token in {elapsed:?}; the reader checked the file {reads} times"
    );
}

#[test]
fn two_threads_with_two_sessions_make_one_token_request() {
    let fake = FakeCarto::start();
    fake.fault("/oauth/token", Fault::Delay(Duration::from_millis(300)));
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    expired_cache(&fake, &cache);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(cache.clone(), stop.clone());
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (barrier, creds, cache, endpoints) = (
                barrier.clone(),
                creds.clone(),
                cache.clone(),
                fake.endpoints(),
            );
            std::thread::spawn(move || {
                barrier.wait();
                CartoAuth::m2m(creds)
                    .cache_filepath(cache)
                    .endpoints(endpoints)
                    .login()
                    .unwrap()
                    .get_access_token()
                    .unwrap()
            })
        })
        .collect();
    let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    watcher.join().expect("a reader saw a partial cache file");
    assert_eq!(fake.requests("/oauth/token").len(), 1);
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(fake.issued_tokens(), [tokens[0].clone()]);
}

#[test]
fn two_threads_renewing_one_session_make_one_token_request() {
    let fake = FakeCarto::start();
    fake.set_expires_in(30); // expired on arrival by the 60 s margin
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let auth = CartoAuth::m2m(&creds)
        .cache_filepath(dir.path().join("token_m2m.json"))
        .endpoints(fake.endpoints())
        .login()
        .unwrap();
    fake.set_expires_in(3600);
    fake.fault("/oauth/token", Fault::Delay(Duration::from_millis(300)));
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (barrier, auth) = (barrier.clone(), auth.clone());
            std::thread::spawn(move || {
                barrier.wait();
                auth.get_access_token().unwrap()
            })
        })
        .collect();
    let tokens: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        fake.requests("/oauth/token").len(),
        2,
        "the login and one renewal"
    );
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(fake.issued_tokens()[1], tokens[0]);
}

/// Whether another holder has the cache lock now: the same `try_lock` on
/// `<cache>.lock` the crate uses.
fn lock_is_held(cache: &Path) -> bool {
    let mut path = cache.as_os_str().to_owned();
    path.push(".lock");
    let file = File::options().read(true).write(true).open(&path).unwrap();
    match file.try_lock() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_killed_lock_holder_does_not_block_the_next_process() {
    let test = support::child_test!(child_main);
    let fake = FakeCarto::start();
    // The holder is stuck in a token request that would take 40 s.
    fake.fault("/oauth/token", Fault::Slow(Duration::from_secs(40)));
    let dir = tempfile::tempdir().unwrap();
    let creds = fake.m2m_credentials_file(dir.path());
    let cache = dir.path().join("token_m2m.json");
    expired_cache(&fake, &cache);
    let before = std::fs::read(&cache).unwrap();
    let env = env(&fake, &creds, &cache);

    let mut holder = test.session("m2m", dir.path(), &env);
    fake.wait_requests("/oauth/token", 1, Duration::from_secs(30));
    assert!(
        lock_is_held(&cache),
        "the holder has the lock while its request runs"
    );

    // The next process queues behind the holder: it says so once it has
    // found the lock taken, and by then has sent nothing.
    let mut next = test.session("m2m-at-signal", dir.path(), &env);
    next.wait_line(Duration::from_secs(30), |l| l == "READY");
    next.write_line("go");
    fake.clear_faults();
    next.wait_line(Duration::from_secs(30), |l| {
        l.starts_with("LOG ") && l.contains("is locked by another holder; waiting")
    });
    assert_eq!(
        fake.requests("/oauth/token").len(),
        1,
        "nobody passed the holder"
    );

    // ...and the holder is killed (SIGKILL: no destructor, no unlock).
    holder.child.kill().unwrap();
    holder.child.wait().unwrap();
    let killed_at = Instant::now();
    let (result, stderr) = next.result(Duration::from_secs(60));
    let waited = killed_at.elapsed();

    assert!(
        result.starts_with(&format!("ok {}", support::jwt::PREFIX)),
        "{result}\n{stderr}"
    );
    // Had the OS kept the killed holder's lock, the next process would
    // have given up on it after its wait (the request timeout + 5 s) and
    // gone on without it, saying so.
    assert!(!stderr.contains("without the lock"), "{stderr}");
    assert_eq!(
        fake.requests("/oauth/token").len(),
        2,
        "the holder's request and the next one's"
    );
    assert!(!lock_is_held(&cache));
    let after = std::fs::read_to_string(&cache).unwrap();
    assert_ne!(after.as_bytes(), before, "the next process wrote its token");
    assert!(after.contains(&fake.issued_tokens()[0]), "{after}");
    eprintln!("killed holder: the next process was served {waited:?} after the kill");
}
