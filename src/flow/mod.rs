//! The interactive login engine: choose a flow (device code, local
//! callback, paste), start it, and finish it with a token. The one-liner
//! and the notebook's two-step API both drive this; neither knows how the
//! other waits.

mod one_line;
mod start;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::callback::{CallbackResult, CallbackServer};
use crate::cancel::{BEAT, Cancel, cancelled, pause};
use crate::clock::now_unix;
use crate::config::OAuthConfig;
use crate::device::{Deadlines, DeviceAuthorization, RealTime, poll_once, poll_until};
use crate::error::{Error, Result};
use crate::instructions::{Flow, LoginInstructions};
use crate::oauth::exchange_code;
use crate::paste::parse_pasted;
use crate::secret::{AuthorizationCode, CodeVerifier};
use crate::token::Token;

/// Code exchanges after a network failure, in the local flow (the code
/// came straight from the browser, so only the network can be at fault).
const EXCHANGE_ATTEMPTS: usize = 3;
const EXCHANGE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Where a login stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the user; a failed paste or exchange leaves it here.
    Pending,
    /// Over: `"completed"`, `"cancelled"`, `"timed out"`, `"refused"`.
    Finished(&'static str),
}

/// A redirect flow's half of PKCE: kept until a code exchange succeeds, so
/// a slip of the paste or a network error never costs a sign-in.
struct Redirect {
    /// The redirect URI the authorize URL carries; the exchange repeats it.
    redirect_uri: String,
    verifier: CodeVerifier,
}

/// How the login completes, with what each way needs and nothing else.
enum Way {
    /// The browser comes back to our callback server (or its address is
    /// pasted, when that browser is on another machine).
    Local {
        redirect: Redirect,
        callback: CallbackServer,
    },
    /// The user pastes the address CARTO showed, or its code.
    Paste { redirect: Redirect },
    /// The user approves a code elsewhere; we poll.
    Device {
        authorization: DeviceAuthorization,
        expires_at: i64,
    },
}

/// A login that has begun.
pub(crate) struct Login {
    pub(crate) config: Arc<OAuthConfig>,
    /// The authorize URL, or the device flow's verification link.
    pub(crate) address: String,
    pub(crate) browser_opened: bool,
    pub(crate) why_paste: Option<String>,
    way: Way,
    /// Held for a moment only, never across a wait, so that `cancel` and
    /// `is_pending` answer at once.
    state: Mutex<State>,
    /// One exchange or poll at a time.
    busy: Mutex<()>,
    /// Set by `cancel`: every wait of this login ends within a beat.
    cancel: Cancel,
}

impl Login {
    fn new(
        config: Arc<OAuthConfig>,
        address: String,
        way: Way,
        browser_opened: bool,
        why_paste: Option<String>,
    ) -> Login {
        Login {
            config,
            address,
            browser_opened,
            why_paste,
            way,
            state: Mutex::new(State::Pending),
            busy: Mutex::new(()),
            cancel: Cancel::default(),
        }
    }

    /// How the login completes.
    pub(crate) fn flow(&self) -> Flow {
        match self.way {
            Way::Local { .. } => Flow::LocalCallback,
            Way::Paste { .. } => Flow::Paste,
            Way::Device { .. } => Flow::DeviceCode,
        }
    }

    /// What a prompt or a card needs to show this login.
    pub(crate) fn instructions(&self) -> LoginInstructions {
        let device = match &self.way {
            Way::Device {
                authorization,
                expires_at,
            } => Some((authorization, *expires_at)),
            _ => None,
        };
        LoginInstructions {
            authorize_url: self.address.clone(),
            flow: self.flow(),
            browser_opened: self.browser_opened,
            org: self.config.org.clone(),
            why_paste: self.why_paste.clone(),
            user_code: device.map(|(a, _)| a.user_code.clone()),
            verification_uri: device
                .filter(|(a, _)| a.verification_uri_complete.is_some())
                .map(|(a, _)| a.verification_uri.clone()),
            expires_at: device.map(|(_, at)| at),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the login is still waiting for the user.
    pub(crate) fn is_pending(&self) -> bool {
        *self.state() == State::Pending
    }

    /// Where it stands, for `Debug`.
    pub(crate) fn describe_state(&self) -> &'static str {
        match *self.state() {
            State::Pending => "pending",
            State::Finished(s) => s,
        }
    }

    /// Ends the login with `outcome` if it is still pending; the token only
    /// when it was: after a cancel, no token comes back.
    fn finish(&self, outcome: &'static str, token: Token) -> Result<Token> {
        let mut state = self.state();
        check_pending(*state)?;
        *state = State::Finished(outcome);
        Ok(token)
    }

    /// One exchange or poll at a time; a login cancelled meanwhile is over.
    fn busy(&self) -> Result<MutexGuard<'_, ()>> {
        let busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        check_pending(*self.state())?;
        Ok(busy)
    }

    /// Finishes the login with what the user pasted. A refused or failed
    /// exchange leaves the login pending: it can be completed again.
    pub(crate) fn complete(&self, pasted: &str) -> Result<Token> {
        check_pending(*self.state())?;
        let redirect = match &self.way {
            Way::Local { redirect, .. } | Way::Paste { redirect } => redirect,
            Way::Device { .. } => {
                return Err(Error::NoCode {
                    what: "this login finishes by itself once the code is approved: call wait()",
                });
            }
        };
        let code = parse_pasted(pasted, &self.config.common.endpoints.issuer)?;
        let _busy = self.busy()?;
        let token = self.exchange(&code, redirect)?;
        let token = self.finish("completed", token)?;
        self.stop_callback();
        Ok(token)
    }

    /// Waits for the browser to come back (local flow) or the code to be
    /// approved (device flow), then finishes.
    pub(crate) fn wait(&self) -> Result<Token> {
        check_pending(*self.state())?;
        match &self.way {
            Way::Local { redirect, callback } => self.wait_callback(redirect, callback),
            Way::Device {
                authorization,
                expires_at,
            } => self.wait_device(authorization, *expires_at),
            Way::Paste { .. } => Err(Error::NoCode {
                what: "this login has no local callback to wait for; pass the pasted address to complete()",
            }),
        }
    }

    fn wait_callback(&self, redirect: &Redirect, callback: &CallbackServer) -> Result<Token> {
        let Some(result) = callback.take_result() else {
            return Err(Error::NoCode {
                what: "the browser already came back to this login; paste the address it showed into complete()",
            });
        };
        let outcome = loop {
            match result.recv_timeout(BEAT) {
                Ok(outcome) => break outcome,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    break CallbackResult::Stopped;
                }
                // The server's own timeout ends its wait; a cancel ends ours.
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if cancelled(Some(&self.cancel)) {
                        self.cancel();
                        break CallbackResult::Stopped;
                    }
                }
            }
        };
        match outcome {
            CallbackResult::Code(code) => {
                let _busy = self.busy()?;
                let mut attempt = 1;
                let token = loop {
                    match self.exchange(&code, redirect) {
                        Err(Error::Network { .. }) if attempt < EXCHANGE_ATTEMPTS => {
                            attempt += 1;
                            if pause(EXCHANGE_RETRY_PAUSE, Some(&self.cancel)).is_err() {
                                return Err(Error::LoginFinished { state: "cancelled" });
                            }
                        }
                        other => break other?,
                    }
                };
                self.finish("completed", token)
            }
            CallbackResult::Denied { error, description } => {
                Err(Error::Authorization { error, description })
            }
            CallbackResult::WrongIssuer(got) => Err(Error::IssuerMismatch {
                expected: self.config.common.endpoints.issuer.clone(),
                got,
            }),
            CallbackResult::TimedOut => {
                let mut state = self.state();
                check_pending(*state)?;
                *state = State::Finished("timed out");
                Err(Error::LoginTimeout {
                    redirect_uri: redirect.redirect_uri.clone(),
                    waited: self.config.login_timeout,
                })
            }
            CallbackResult::Stopped => {
                let mut state = self.state();
                if *state == State::Pending {
                    *state = State::Finished("cancelled");
                }
                Err(Error::LoginFinished {
                    state: match *state {
                        State::Finished(s) => s,
                        State::Pending => "cancelled",
                    },
                })
            }
        }
    }

    fn wait_device(&self, authorization: &DeviceAuthorization, expires_at: i64) -> Result<Token> {
        let _busy = self.busy()?;
        let left = u64::try_from(expires_at.saturating_sub(now_unix())).unwrap_or(0);
        let deadlines = Deadlines {
            code_expires_in: Duration::from_secs(left),
            login_timeout: self.config.login_timeout,
        };
        let http = self.config.common.http();
        let endpoints = &self.config.common.endpoints;
        let mut clock = RealTime {
            start: Instant::now(),
            cancel: &self.cancel,
        };
        let result = poll_until(authorization.interval, deadlines, &mut clock, || {
            poll_once(&http, endpoints, &authorization.device_code)
        });
        match result {
            Ok(token) => self.finish("completed", token),
            Err(e) => {
                let mut state = self.state();
                if *state == State::Pending {
                    *state = State::Finished(match &e {
                        Error::Authorization { .. } => "refused",
                        Error::LoginFinished { state } => state,
                        _ => "timed out",
                    });
                }
                Err(e)
            }
        }
    }

    /// Ends the login at once, whatever waits: later calls get
    /// [`Error::LoginFinished`], a wait in progress ends within a beat
    /// without a token, and the callback port is free when this returns.
    pub(crate) fn cancel(&self) {
        self.cancel.set();
        {
            let mut state = self.state();
            if *state == State::Pending {
                *state = State::Finished("cancelled");
            }
        }
        self.stop_callback();
    }

    fn stop_callback(&self) {
        if let Way::Local { callback, .. } = &self.way {
            callback.stop();
        }
    }

    fn exchange(&self, code: &AuthorizationCode, redirect: &Redirect) -> Result<Token> {
        let common = &self.config.common;
        exchange_code(
            &common.http(),
            &common.endpoints,
            code,
            &redirect.redirect_uri,
            &redirect.verifier,
        )
    }
}

fn check_pending(state: State) -> Result<()> {
    match state {
        State::Pending => Ok(()),
        State::Finished(state) => Err(Error::LoginFinished { state }),
    }
}
