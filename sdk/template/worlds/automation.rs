//! {{name}}: a Patron automation (abandoned-cart reminder).

use patron_sdk::{Action, Automation, Event, Profile, Result, Timer, time::DAY_MS};

/// The plugin.
struct Plugin;

impl Automation for Plugin {
    fn on_event(event: Event, _profile: Profile) -> Result<Vec<Action>> {
        Ok(match event.kind.as_str() {
            "add_to_cart" => {
                vec![Action::ScheduleTimer { name: "cart-reminder".into(), at: event.at + DAY_MS, data: "{}".into() }]
            }
            "checkout_started" => vec![Action::CancelTimer("cart-reminder".into())],
            _ => vec![],
        })
    }

    fn on_timer(timer: Timer, _profile: Profile) -> Result<Vec<Action>> {
        Ok(match timer.name.as_str() {
            "cart-reminder" => vec![Action::SendMessage {
                channel: "email".into(),
                template: "cart-reminder".into(),
                data: "{}".into(),
            }],
            _ => vec![],
        })
    }
}

patron_sdk::export!(automation: Plugin);
