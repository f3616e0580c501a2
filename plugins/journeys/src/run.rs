//! A journey's run for one customer: entered at a moment, a list of steps (a message,
//! maybe with a coupon) due some time after entry, timers for the steps not due at
//! once, and an exit. The run is kept in the install's kv under `<journey>:<customer>`;
//! every timer carries the entry time of its run, so a timer of a run that has exited
//! (or been replaced) sends nothing, even if cancelling it raced with its firing.

use patron_sdk::json::{self, Fields, FromJson, Map, ToJson, Value};
use patron_sdk::{Action, CouponSpec, Discount, Result, Timer, kv};

use crate::config::{Reentry, days};

/// What a run keeps between calls; in kv `{"entered_at": …, "active": …, "vars": {…}}`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub entered_at: i64,
    pub active: bool,
    /// Template variables of every step (e.g. `products`).
    pub vars: Map,
}

impl FromJson for Run {
    fn from_json(value: &Value) -> std::result::Result<Self, json::Error> {
        let mut f = Fields::new(value)?;
        let vars = f.value("vars").and_then(Value::as_object).cloned().unwrap_or_default();
        Ok(Self { entered_at: f.required("entered_at")?, active: f.required("active")?, vars })
    }
}

impl ToJson for Run {
    fn to_json(&self) -> Value {
        json::object([
            ("entered_at", Value::from(self.entered_at)),
            ("active", Value::from(self.active)),
            ("vars", Value::Object(self.vars.clone())),
        ])
    }
}

/// The JSON text of an object of `pairs`.
pub fn object_text<const N: usize>(pairs: [(&str, Value); N]) -> String {
    json::object(pairs).to_json()
}

/// One step: its name (`reminder_1`), template, delay after entry, and coupon.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub name: &'static str,
    pub template: &'static str,
    pub after_ms: i64,
    /// Percent off of a coupon issued with the message, valid for `coupon_days`.
    pub coupon: Option<(u8, u32)>,
}

impl Step {
    pub fn new(name: &'static str, template: &'static str, after_ms: i64) -> Self {
        Self { name, template, after_ms, coupon: None }
    }
}

/// A journey as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct Journey {
    pub name: &'static str,
    pub reentry: Reentry,
    pub steps: Vec<Step>,
}

fn key(journey: &str, customer: &str) -> String {
    format!("{journey}:{customer}")
}

/// The customer's run of `journey`, if they ever entered it.
pub fn run_of(journey: &str, customer: &str) -> Result<Option<Run>> {
    Ok(kv::read(&key(journey, customer))?)
}

fn save(journey: &str, customer: &str, run: &Run) -> Result<()> {
    Ok(kv::write(&key(journey, customer), run)?)
}

/// Whether the customer is in `journey` now.
pub fn is_active(journey: &str, customer: &str) -> Result<bool> {
    Ok(run_of(journey, customer)?.is_some_and(|run| run.active))
}

impl Journey {
    fn timer_name(&self, step: &Step) -> String {
        format!("{}:{}", self.name, step.name)
    }

    /// The message (and coupon) of `step`.
    fn step_actions(&self, step: &Step, run: &Run, at: i64) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut data = run.vars.clone();
        if let Some((percent, valid_days)) = step.coupon.filter(|(percent, _)| *percent > 0) {
            actions.push(Action::IssueCoupon(CouponSpec {
                discount: Discount::Percent(percent),
                minimum_spend: None,
                expires_at: Some(at + days(valid_days)),
            }));
            // The host adds the coupon's code as `coupon_code`.
            data.insert("coupon_percent", percent);
        }
        data.insert("journey", self.name);
        data.insert("step", step.name);
        data.insert("purpose", "marketing");
        actions.push(Action::SendMessage {
            channel: "email".into(),
            template: step.template.into(),
            data: Value::Object(data).to_json(),
        });
        actions
    }

    /// Enters the customer at `at` with template variables `vars`, unless they are in
    /// the journey already or its re-entry rule keeps them out: steps due at once are
    /// sent, the others scheduled.
    pub fn enter(&self, customer: &str, at: i64, vars: Map) -> Result<Vec<Action>> {
        if let Some(previous) = run_of(self.name, customer)?
            && (previous.active || !self.reentry.allows(previous.entered_at, at))
        {
            return Ok(Vec::new());
        }
        let mut run = Run { entered_at: at, active: true, vars };
        let mut actions = Vec::new();
        for step in &self.steps {
            if step.after_ms <= 0 {
                actions.extend(self.step_actions(step, &run, at));
            } else {
                actions.push(Action::ScheduleTimer {
                    name: self.timer_name(step),
                    at: at + step.after_ms,
                    data: object_text([("run", Value::from(at))]),
                });
            }
        }
        run.active = self.steps.iter().any(|s| s.after_ms > 0);
        save(self.name, customer, &run)?;
        Ok(actions)
    }

    /// Takes the customer out of the journey: the run ends, its timers are cancelled.
    pub fn exit(&self, customer: &str) -> Result<Vec<Action>> {
        let Some(mut run) = run_of(self.name, customer)?.filter(|run| run.active) else { return Ok(Vec::new()) };
        run.active = false;
        save(self.name, customer, &run)?;
        Ok(self.steps.iter().filter(|s| s.after_ms > 0).map(|s| Action::CancelTimer(self.timer_name(s))).collect())
    }

    /// Whether `timer` is one of this journey's.
    pub fn owns(&self, timer: &Timer) -> bool {
        timer.name.strip_prefix(self.name).is_some_and(|rest| rest.starts_with(':'))
    }

    /// A step's timer fired: the step is sent if the run it belongs to is still going
    /// and `still_in` (the journey's exit conditions, checked again now) holds; the
    /// last step ends the run.
    pub fn fire(&self, customer: &str, timer: &Timer, still_in: impl FnOnce(&Run) -> bool) -> Result<Vec<Action>> {
        let Some(step) = self.steps.iter().find(|s| self.timer_name(s) == timer.name) else { return Ok(Vec::new()) };
        let run_at = json::parse(&timer.data).ok().and_then(|d| d["run"].as_i64());
        let Some(mut run) = run_of(self.name, customer)?.filter(|run| run.active && Some(run.entered_at) == run_at)
        else {
            return Ok(Vec::new()); // The run it belongs to is over.
        };
        if !still_in(&run) {
            return self.exit(customer);
        }
        let actions = self.step_actions(step, &run, timer.at);
        if !self.steps.iter().any(|s| s.after_ms > step.after_ms) {
            run.active = false;
            save(self.name, customer, &run)?;
        }
        Ok(actions)
    }

    /// Adds to a running run's variables (e.g. another product put in the cart).
    pub fn update_vars(&self, customer: &str, update: impl FnOnce(&mut Map)) -> Result<()> {
        if let Some(mut run) = run_of(self.name, customer)?.filter(|run| run.active) {
            update(&mut run.vars);
            save(self.name, customer, &run)?;
        }
        Ok(())
    }
}
