//! Whose token a cache entry holds, and so who may reuse it: the M2M
//! application that made it, the person a session belongs to, the API base
//! URL and organization a login asks for.

use super::CacheEntry;

/// Why a cached token is not reused, for the log and the user.
pub(crate) type NotReused = &'static str;

impl CacheEntry {
    /// An M2M entry is these credentials' only when the token says it was
    /// obtained by this client (`azp`), or, for a token that does not say,
    /// when we recorded this client, and when it is for the same API.
    pub(crate) fn check_m2m(&self, client_id: &str, api_base_url: &str) -> Result<(), NotReused> {
        if !same_url(self.url(), Some(api_base_url)) {
            return Err("it is for another API base URL");
        }
        match (self.token.authorized_party(), self.client_id.as_deref()) {
            (Some(azp), _) if azp == client_id => Ok(()),
            (Some(_), _) => Err("its token belongs to another M2M application"),
            (None, Some(id)) if id == client_id => Ok(()),
            (None, Some(_)) => Err("it was made by another M2M application"),
            (None, None) => Err("nothing in it says which M2M application made it"),
        }
    }

    /// Whether a login asking for `api_base_url` and `org` (when given)
    /// may present this entry as its session.
    pub(crate) fn check_login(
        &self,
        api_base_url: Option<&str>,
        org: Option<&str>,
    ) -> Result<(), NotReused> {
        match (api_base_url, self.url()) {
            (Some(_), None) => {}
            (Some(wanted), got) if !same_url(got, Some(wanted)) => {
                return Err("it is for another API base URL");
            }
            (None, None | Some("")) => return Err("it has no API base URL"),
            _ => {}
        }
        self.check_org(org)
    }

    /// Whether an OAuth session of `subject` on `api_base_url` may renew
    /// itself with this entry: the same person, the same API, the same
    /// organization when one was asked for.
    pub(crate) fn check_same_user(
        &self,
        subject: Option<&str>,
        api_base_url: Option<&str>,
        org: Option<&str>,
    ) -> Result<(), NotReused> {
        match (subject, self.token.subject()) {
            (Some(ours), Some(theirs)) if ours == theirs => {}
            (Some(_), Some(_)) => return Err("it is another account's token"),
            _ => return Err("its token does not say whose it is"),
        }
        if !same_url(self.url(), api_base_url) {
            return Err("it is for another API base URL");
        }
        self.check_org(org)
    }

    /// An organization asked for must be the one recorded: a token of
    /// unknown organization is never presented as that organization's.
    fn check_org(&self, org: Option<&str>) -> Result<(), NotReused> {
        match org {
            Some(org) if self.org.as_deref() != Some(org) => {
                Err("nothing in it says it is for this organization")
            }
            _ => Ok(()),
        }
    }
}

impl CacheEntry {
    fn url(&self) -> Option<&str> {
        self.api_base_url.as_ref().map(|u| u.as_str())
    }
}

fn same_url(a: Option<&str>, b: Option<&str>) -> bool {
    let norm = |u: Option<&str>| u.map(|u| u.trim().trim_end_matches('/').to_string());
    match (norm(a), norm(b)) {
        (Some(a), Some(b)) => !a.is_empty() && a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::entry_for as entry;
    use crate::jwt::test_token as jwt;

    #[test]
    fn m2m_entries_belong_to_the_client_in_the_token_or_recorded() {
        let a_jwt = jwt(&json!({"azp": "A", "sub": "A@clients", "exp": 2_000_000_000}));
        let url = "https://api.example";
        assert!(entry(&a_jwt, Some(url), None).check_m2m("A", url).is_ok());
        // The token's own claim beats a recorded id (Python drops ours).
        assert!(
            entry(&a_jwt, Some(url), Some("B"))
                .check_m2m("A", url)
                .is_ok()
        );
        assert!(entry(&a_jwt, Some(url), None).check_m2m("B", url).is_err());
        // Not a JWT: only our record can say.
        assert!(
            entry("opaque", Some(url), Some("A"))
                .check_m2m("A", url)
                .is_ok()
        );
        assert!(
            entry("opaque", Some(url), Some("B"))
                .check_m2m("A", url)
                .is_err()
        );
        assert!(
            entry("opaque", Some(url), None)
                .check_m2m("A", url)
                .is_err()
        );
        assert!(
            entry(&a_jwt, Some("https://other"), None)
                .check_m2m("A", url)
                .is_err()
        );
        assert!(
            entry(&a_jwt, Some("https://api.example/"), None)
                .check_m2m("A", url)
                .is_ok()
        );
    }

    #[test]
    fn renewal_takes_only_the_same_users_token() {
        let u1 = jwt(&json!({"sub": "auth0|u1", "exp": 2_000_000_000}));
        let u2 = jwt(&json!({"sub": "auth0|u2", "exp": 2_000_000_000}));
        let url = Some("https://api");
        assert!(
            entry(&u1, url, None)
                .check_same_user(Some("auth0|u1"), url, None)
                .is_ok()
        );
        assert!(
            entry(&u2, url, None)
                .check_same_user(Some("auth0|u1"), url, None)
                .is_err()
        );
        assert!(
            entry(&u1, Some("https://other"), None)
                .check_same_user(Some("auth0|u1"), url, None)
                .is_err()
        );
        // Unknown identity on either side: not adopted.
        assert!(
            entry("opaque", url, None)
                .check_same_user(Some("auth0|u1"), url, None)
                .is_err()
        );
        assert!(
            entry(&u1, url, None)
                .check_same_user(None, url, None)
                .is_err()
        );
        // An organization asked for must be recorded.
        let mut e = entry(&u1, url, None);
        assert!(
            e.check_same_user(Some("auth0|u1"), url, Some("acme"))
                .is_err()
        );
        e.org = Some("acme".into());
        assert!(
            e.check_same_user(Some("auth0|u1"), url, Some("acme"))
                .is_ok()
        );
    }

    #[test]
    fn a_login_presents_a_cached_token_only_for_what_it_asks() {
        let e = entry("t", Some("https://api"), None);
        assert!(e.check_login(None, None).is_ok());
        assert!(e.check_login(Some("https://api/"), None).is_ok());
        assert!(e.check_login(Some("https://other"), None).is_err());
        assert!(e.check_login(None, Some("acme")).is_err());
        let no_url = entry("t", None, None);
        assert!(no_url.check_login(None, None).is_err());
        assert!(no_url.check_login(Some("https://api"), None).is_ok());
    }
}
