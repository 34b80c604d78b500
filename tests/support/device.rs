//! The device authorization grant as Auth0 answers it: device codes, user
//! codes, and the polling answers (pending, slow_down, expired, denied,
//! approved), with the polling rate checked.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How a device login stands at the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Pending,
    Approved { sub: String },
    Denied,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub user_code: String,
    pub organization: Option<String>,
    pub approval: Approval,
    pub expires_at: Instant,
    pub interval: Duration,
    pub last_poll: Option<Instant>,
    pub polls: Vec<Instant>,
    pub redeemed: bool,
    /// The next poll is answered `slow_down`, whatever its timing.
    pub slow_down_next: bool,
}

pub struct Devices {
    /// By device code.
    pub grants: HashMap<String, Grant>,
    /// The interval handed out, in seconds, as sent (any JSON: tests send
    /// absurd values too).
    pub interval: serde_json::Value,
    /// The lifetime of a code, in seconds, as sent.
    pub expires_in: serde_json::Value,
    /// User codes in the order they were issued.
    pub issued: Vec<String>,
}

/// What a poll gets.
pub enum PollAnswer {
    Error(u16, &'static str),
    Approved {
        sub: String,
        organization: Option<String>,
    },
}

impl Default for Devices {
    fn default() -> Devices {
        Devices {
            grants: HashMap::new(),
            interval: 1.into(),
            expires_in: 600.into(),
            issued: Vec::new(),
        }
    }
}

/// Seconds as the fake itself takes them (a number or a string): what is
/// not a positive number is none, what does not fit saturates.
fn seconds(value: &serde_json::Value) -> Duration {
    let secs = value
        .as_f64()
        .or_else(|| value.as_str()?.parse().ok())
        .unwrap_or(0.0);
    if secs > 0.0 {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    } else {
        Duration::ZERO
    }
}

impl Devices {
    /// A new device login: (device_code, user_code).
    pub fn start(&mut self, organization: Option<String>) -> (String, String) {
        let device_code = format!("dev-{}", super::random_word());
        // Auth0's alphabet: consonants only, two groups of four.
        let alphabet: Vec<char> = "BCDFGHJKLMNPQRSTVWXZ".chars().collect();
        let word = super::random_word();
        let picked: String = word
            .bytes()
            .take(8)
            .map(|b| alphabet[b as usize % alphabet.len()])
            .collect();
        let user_code = format!("{}-{}", &picked[..4], &picked[4..]);
        self.issued.push(user_code.clone());
        self.grants.insert(
            device_code.clone(),
            Grant {
                user_code: user_code.clone(),
                organization,
                approval: Approval::Pending,
                // A lifetime beyond the clock's range never ends.
                expires_at: Instant::now()
                    .checked_add(seconds(&self.expires_in))
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400)),
                interval: seconds(&self.interval),
                last_poll: None,
                polls: Vec::new(),
                redeemed: false,
                slow_down_next: false,
            },
        );
        (device_code, user_code)
    }

    pub fn by_user_code(&mut self, user_code: &str) -> Option<&mut Grant> {
        self.grants.values_mut().find(|g| g.user_code == user_code)
    }

    /// Judges one poll, as Auth0 does: too early is `slow_down` (and the
    /// required interval grows by 5 s), then the grant's state.
    pub fn poll(&mut self, device_code: &str) -> PollAnswer {
        let Some(grant) = self.grants.get_mut(device_code) else {
            return PollAnswer::Error(403, "invalid_grant");
        };
        let now = Instant::now();
        grant.polls.push(now);
        if grant.redeemed {
            return PollAnswer::Error(403, "invalid_grant");
        }
        if now > grant.expires_at {
            return PollAnswer::Error(403, "expired_token");
        }
        // A little slack for scheduling: a client that sleeps the interval
        // arrives a hair late, never early by more than this.
        let too_early = grant.last_poll.is_some_and(|last| {
            now.duration_since(last) + Duration::from_millis(150) < grant.interval
        });
        grant.last_poll = Some(now);
        if grant.slow_down_next || too_early {
            grant.slow_down_next = false;
            grant.interval += Duration::from_secs(5);
            return PollAnswer::Error(429, "slow_down");
        }
        match grant.approval.clone() {
            Approval::Pending => PollAnswer::Error(403, "authorization_pending"),
            Approval::Denied => PollAnswer::Error(403, "access_denied"),
            Approval::Approved { sub } => {
                grant.redeemed = true;
                PollAnswer::Approved {
                    sub,
                    organization: grant.organization.clone(),
                }
            }
        }
    }
}
