//! Whether the widget may send or store anything about the shopper.
//!
//! Until the shop's settings are known (they arrive with the widget state), nothing is
//! sent or stored: events wait in memory. Then an answer is needed before anything is
//! sent — events wait in memory meanwhile — where the shop requires consent, and where
//! the shop honours Do-Not-Track (the host's default) and the browser sends DNT or
//! Global Privacy Control. `patron.consent(true)` (the store's banner) opts in, even
//! under GPC; `patron.consent(false)` always opts out. The shopper's answer is the one
//! thing kept in `localStorage` regardless, so that it is not asked for again on every
//! page.

use wasm_bindgen::JsValue;

use crate::json;

/// `localStorage` key of the shopper's answer: `"1"` granted, `"0"` refused.
const STORAGE_KEY: &str = "patron_consent";

/// The shopper's answer to the consent prompt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Answer {
    Unanswered,
    Granted,
    Refused,
}

/// The shop's privacy settings, from the widget state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ShopPolicy {
    pub(crate) consent_required: bool,
    pub(crate) honor_dnt: bool,
}

/// Everything the decision depends on.
#[derive(Debug)]
pub(crate) struct Consent {
    answer: Answer,
    policy: Option<ShopPolicy>,
    do_not_track: bool,
}

impl Consent {
    /// Reads the stored answer and the browser's DNT / GPC signals.
    pub(crate) fn load() -> Self {
        let answer = match storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten()).as_deref() {
            Some("1") => Answer::Granted,
            Some("0") => Answer::Refused,
            _ => Answer::Unanswered,
        };
        Self { answer, policy: None, do_not_track: browser_do_not_track() }
    }

    /// Records the shop's settings once the widget state has arrived.
    pub(crate) fn set_policy(&mut self, policy: ShopPolicy) {
        self.policy = Some(policy);
    }

    /// Records and remembers the shopper's answer.
    pub(crate) fn answer(&mut self, granted: bool) {
        self.answer = if granted { Answer::Granted } else { Answer::Refused };
        if let Some(s) = storage() {
            let _ = s.set_item(STORAGE_KEY, if granted { "1" } else { "0" });
        }
    }

    /// Whether events may be sent to the host and kept in `localStorage`.
    pub(crate) fn allows_tracking(&self) -> bool {
        decide(self.policy, self.answer, self.do_not_track)
    }

    /// Whether tracking is ruled out on this page unless the shopper changes their
    /// answer, so events waiting in memory can be dropped.
    pub(crate) fn refused(&self) -> bool {
        let pending = match self.policy {
            None => true,
            Some(p) => self.answer == Answer::Unanswered && needs_answer(p, self.do_not_track),
        };
        !pending && !self.allows_tracking()
    }
}

/// Whether nothing may be sent before the shopper answers.
fn needs_answer(policy: ShopPolicy, do_not_track: bool) -> bool {
    policy.consent_required || (policy.honor_dnt && do_not_track)
}

/// The rule itself, apart from the browser so it can be unit-tested.
fn decide(policy: Option<ShopPolicy>, answer: Answer, do_not_track: bool) -> bool {
    let Some(policy) = policy else { return false };
    match answer {
        Answer::Granted => true,
        Answer::Refused => false,
        Answer::Unanswered => !needs_answer(policy, do_not_track),
    }
}

/// The page's `localStorage`, if the browser lets us have it.
pub(crate) fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// `navigator.doNotTrack == "1"` or `navigator.globalPrivacyControl == true`.
fn browser_do_not_track() -> bool {
    let Some(window) = web_sys::window() else { return false };
    let navigator = JsValue::from(window.navigator());
    json::string(&navigator, "doNotTrack").as_deref() == Some("1")
        || json::get(&navigator, "globalPrivacyControl") == JsValue::TRUE
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: ShopPolicy = ShopPolicy { consent_required: false, honor_dnt: false };
    const STRICT: ShopPolicy = ShopPolicy { consent_required: true, honor_dnt: true };

    #[test]
    fn nothing_before_the_shop_policy_is_known() {
        assert!(!decide(None, Answer::Granted, false));
    }

    #[test]
    fn consent_required_waits_for_a_yes() {
        assert!(!decide(Some(STRICT), Answer::Unanswered, false));
        assert!(!decide(Some(STRICT), Answer::Refused, false));
        assert!(decide(Some(STRICT), Answer::Granted, false));
    }

    #[test]
    fn open_shop_tracks_unless_refused() {
        assert!(decide(Some(OPEN), Answer::Unanswered, false));
        assert!(!decide(Some(OPEN), Answer::Refused, false));
    }

    #[test]
    fn dnt_asks_first_where_the_shop_honours_it() {
        const GPC_DEFAULT: ShopPolicy = ShopPolicy { consent_required: false, honor_dnt: true };
        assert!(!decide(Some(GPC_DEFAULT), Answer::Unanswered, true), "no tracking from a GPC browser");
        assert!(decide(Some(GPC_DEFAULT), Answer::Unanswered, false));
        assert!(decide(Some(GPC_DEFAULT), Answer::Granted, true), "opting in through the banner wins");
        assert!(!decide(Some(STRICT), Answer::Refused, true));
        assert!(decide(Some(OPEN), Answer::Unanswered, true), "a shop that explicitly ignores DNT");
    }
}
