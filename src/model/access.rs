//! Access rules: who may open which terminal, and when; and what a
//! terminal's address book is made of.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use super::devices::DeviceUser;

/// A day's time window, as the API writes it: `830` is 08:30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTime {
    pub start_hhmm: i64,
    pub end_hhmm: i64,
}

/// A rule as the API sets it, apart from its members and terminals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    pub name: String,
    #[serde(default)]
    pub remind_face: bool,
    #[serde(default)]
    pub is_temp: bool,
    /// Unix seconds; both ends count. `None`: no bound.
    #[serde(default)]
    pub valid_from: Option<i64>,
    #[serde(default)]
    pub valid_to: Option<i64>,
    /// 1 Monday … 7 Sunday (0 is also Sunday); empty: every day.
    #[serde(default)]
    pub weekdays: Vec<i64>,
    /// Empty: all day.
    #[serde(default)]
    pub day_times: Vec<DayTime>,
}

impl RuleSpec {
    /// Whether the rule is in force at `now` (its valid days).
    pub fn in_force(&self, now: i64) -> bool {
        self.valid_from.is_none_or(|f| f <= now) && self.valid_to.is_none_or(|t| now <= t)
    }

    /// The next instant after `now` at which [`RuleSpec::in_force`]
    /// changes, if any.
    pub fn next_turn(&self, now: i64) -> Option<i64> {
        [self.valid_from, self.valid_to.map(|t| t.saturating_add(1))]
            .into_iter()
            .flatten()
            .filter(|t| *t > now)
            .min()
    }

    /// The rule's weekly windows in the device protocol's `pass_rule_list`
    /// form, `"9:00-10:00 * * 1-5 *"` (a time range, then day of month,
    /// month, weekday and year as in cron, weekdays 0 Sunday to 6
    /// Saturday): one a day window, or none when the rule opens at all
    /// hours of every day.
    pub fn pass_rules(&self) -> Vec<String> {
        if self.weekdays.is_empty() && self.day_times.is_empty() {
            return Vec::new();
        }
        let days: BTreeSet<i64> = self.weekdays.iter().map(|d| d % 7).collect();
        let days = if days.is_empty() || days.len() == 7 {
            "*".to_string()
        } else {
            days.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let hhmm = |t: i64| format!("{}:{:02}", t / 100, t % 100);
        let windows = if self.day_times.is_empty() {
            vec![DayTime {
                start_hhmm: 0,
                end_hhmm: 2359,
            }]
        } else {
            self.day_times.clone()
        };
        windows
            .iter()
            .map(|w| format!("{}-{} * * {days} *", hhmm(w.start_hhmm), hhmm(w.end_hhmm)))
            .collect()
    }
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    /// Its number on the device protocol.
    pub number: i64,
    pub tenant_id: i64,
    pub rule_id: String,
    pub spec: RuleSpec,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a terminal's address book is made of: `None` the whole tenant
/// (no rule bound), else the numbers of the bound rules in force, sorted
/// (empty: nobody).
pub type BookKey = Option<Vec<i64>>;

/// Per person of a book, the numbers of the rules that admit them there
/// (empty for the whole tenant, which no rule limits).
pub type Book = BTreeMap<i64, Vec<i64>>;

/// How one access change reaches some terminals: the people they gain,
/// those whose pass rules changed, and those they lose.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessDelta {
    pub sns: Vec<String>,
    #[serde(default)]
    pub create_user: Vec<DeviceUser>,
    #[serde(default)]
    pub update_user: Vec<DeviceUser>,
    #[serde(default)]
    pub delete_user: Vec<DeviceUser>,
}

impl AccessDelta {
    pub fn is_empty(&self) -> bool {
        self.create_user.is_empty() && self.update_user.is_empty() && self.delete_user.is_empty()
    }
}

/// Person ids a terminal gains, must re-read, and loses when its book goes
/// from `before` to `after`; `retimed` are the rules whose windows changed,
/// so their people re-read their pass rules.
pub fn book_diff(
    before: &Book,
    after: &Book,
    retimed: &HashSet<i64>,
) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let (mut gained, mut changed, mut lost) = (Vec::new(), Vec::new(), Vec::new());
    for (person, rules) in after {
        match before.get(person) {
            None => gained.push(*person),
            Some(old) if old != rules || rules.iter().any(|r| retimed.contains(r)) => {
                changed.push(*person)
            }
            Some(_) => {}
        }
    }
    lost.extend(before.keys().filter(|p| !after.contains_key(p)));
    (gained, changed, lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(entries: &[(i64, &[i64])]) -> Book {
        entries.iter().map(|(p, r)| (*p, r.to_vec())).collect()
    }

    #[test]
    fn a_diff_names_who_comes_who_goes_and_whose_rules_changed() {
        let before = book(&[(1, &[10]), (2, &[10]), (3, &[10, 11])]);
        let after = book(&[(2, &[10]), (3, &[10]), (4, &[11])]);
        let (gained, changed, lost) = book_diff(&before, &after, &HashSet::new());
        assert_eq!((gained, changed, lost), (vec![4], vec![3], vec![1]));
        // A rule whose windows changed makes its people re-read.
        let (_, changed, _) = book_diff(&before, &after, &HashSet::from([10]));
        assert_eq!(changed, vec![2, 3]);
        assert_eq!(
            book_diff(&after, &after, &HashSet::new()),
            (vec![], vec![], vec![])
        );
    }

    #[test]
    fn validity_counts_both_ends_and_names_the_next_turn() {
        let spec = RuleSpec {
            valid_from: Some(100),
            valid_to: Some(200),
            ..RuleSpec::default()
        };
        assert!(!spec.in_force(99));
        assert!(spec.in_force(100) && spec.in_force(200));
        assert!(!spec.in_force(201));
        assert_eq!(spec.next_turn(50), Some(100));
        assert_eq!(spec.next_turn(100), Some(201));
        assert_eq!(spec.next_turn(201), None);
        assert!(RuleSpec::default().in_force(0));
        assert_eq!(RuleSpec::default().next_turn(0), None);
    }

    #[test]
    fn pass_rules_are_one_cron_like_line_a_window() {
        assert!(RuleSpec::default().pass_rules().is_empty());
        let spec = RuleSpec {
            weekdays: vec![5, 1, 2, 3, 4],
            day_times: vec![
                DayTime {
                    start_hhmm: 830,
                    end_hhmm: 1200,
                },
                DayTime {
                    start_hhmm: 1330,
                    end_hhmm: 1800,
                },
            ],
            ..RuleSpec::default()
        };
        assert_eq!(
            spec.pass_rules(),
            ["8:30-12:00 * * 1,2,3,4,5 *", "13:30-18:00 * * 1,2,3,4,5 *"]
        );
        // Sunday is 0 on the wire whether the API said 0 or 7; every day
        // is `*`.
        let weekend = RuleSpec {
            weekdays: vec![6, 7],
            ..RuleSpec::default()
        };
        assert_eq!(weekend.pass_rules(), ["0:00-23:59 * * 0,6 *"]);
        let daily = RuleSpec {
            weekdays: (1..=7).collect(),
            day_times: vec![DayTime {
                start_hhmm: 900,
                end_hhmm: 905,
            }],
            ..RuleSpec::default()
        };
        assert_eq!(daily.pass_rules(), ["9:00-9:05 * * * *"]);
    }
}
