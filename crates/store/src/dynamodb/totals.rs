//! A key's usage figures item (`ACC#<account>#USAGE#<key>` / `TOTAL`): its lifetime figures,
//! and the counts of its latest days, held there so that a roll-up writes one item per key.
//!
//! A key entry of a usage record for day D is written to this one item (about 300 bytes): the
//! lifetime count, the last use (unless a later one is stored), and D's counts by outcome in
//! attributes named for D (`valid@2026-11-28`, …; a count of 0 is not written), with D in the
//! string set `days`. At most [`HELD_DAYS`] days are held. When another day comes, the update's
//! condition fails; the roll-up reads the item and writes again as [`plan`] says: the oldest day
//! held moves to a day item of its own (`DAY#<date>`) in the same transaction, on condition that
//! the days held and its counts are still the ones read; a record of a day older than every day
//! held (a late one) adds to that day's own item instead. So a key costs one small write per
//! roll-up that names it, and a read and one more write per day it is used.
//!
//! Reads add a key's held days to its day items (`usage_days`), and its lifetime figures to
//! the ones a record from before this item may still hold ([`UsageTotalItem::add_to`]).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use chrono::NaiveDate;
use keyward_core::usage::{KeyUse, Outcomes};

use super::items::*;
use super::{DynamoStore, build_error, n, s};
use crate::error::{StoreError, StoreResult};

/// How many days' counts a key's figures item holds before the oldest moves out: two, so that
/// records of the day before, which come for a while after midnight, still add to a held day.
pub const HELD_DAYS: usize = 2;
const _: () = assert!(
    HELD_DAYS == 2,
    "`plan` and `KeyUpdate::Archive` keep one other day"
);

/// The attribute holding `what` (`valid`, `rate_limited`, `denied`) of a held `day`.
fn held_name(what: &str, day: NaiveDate) -> String {
    format!("{what}@{day}")
}

/// Each outcome's attribute name and its count in `o`.
fn by_outcome(o: Outcomes) -> [(&'static str, u64); 3] {
    [
        ("valid", o.valid),
        ("rate_limited", o.rate_limited),
        ("denied", o.denied),
    ]
}

/// What a key's figures item holds that decides how a roll-up writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// The stored last use, in milliseconds since the epoch.
    pub last_used_ms: Option<i64>,
    /// The days held, with their counts.
    pub days: BTreeMap<NaiveDate, Outcomes>,
}

impl Held {
    /// Reads an item's held days and last use.
    pub fn of(item: &Item) -> StoreResult<Self> {
        let corrupt = || StoreError::Backend("corrupt usage figures item".into());
        let mut days = BTreeMap::new();
        if let Some(held) = item.get("days") {
            let AttributeValue::Ss(held) = held else {
                return Err(corrupt());
            };
            for d in held {
                let day: NaiveDate = d.parse().map_err(|_| corrupt())?;
                let o = Outcomes {
                    valid: count_in(item, &held_name("valid", day))?,
                    rate_limited: count_in(item, &held_name("rate_limited", day))?,
                    denied: count_in(item, &held_name("denied", day))?,
                };
                days.insert(day, o);
            }
        }
        let last_used_ms = match item.get("last_used_ms") {
            None | Some(AttributeValue::Null(_)) => None,
            Some(AttributeValue::N(v)) => Some(v.parse().map_err(|_| corrupt())?),
            Some(_) => return Err(corrupt()),
        };
        Ok(Self { last_used_ms, days })
    }
}

/// How a roll-up writes a key's entry for day D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUpdate {
    /// Count, and add to D's held counts; take the last use if `last_use`.
    Add { last_use: bool },
    /// As `Add`, once the held `day` (holding `counts`) has moved to its own item; `kept` is
    /// the other day held, which stays.
    Archive {
        last_use: bool,
        day: NaiveDate,
        counts: Outcomes,
        kept: NaiveDate,
    },
    /// D is older than every day held: count, and add to D's own item.
    Late { last_use: bool },
    /// No figures item: if the key record is there (a key from before the item), create it.
    Adopt,
    /// The key is gone: its uses count for the account only.
    Gone,
}

/// Which of a key's writes in a roll-up an item of the transaction is: only a failed
/// [`Part::Record`] says something without a read (the key is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Its figures item, or a day item of its own.
    Figures,
    /// The check that its record exists (an adoption).
    Record,
}

/// How to write an entry for `day`, last used at `used_ms`, given what the figures item holds
/// (`None`: there is none).
pub fn plan(held: Option<&Held>, day: NaiveDate, used_ms: i64) -> KeyUpdate {
    let Some(held) = held else {
        return KeyUpdate::Adopt;
    };
    let last_use = held.last_used_ms.is_none_or(|ms| ms <= used_ms);
    let mut days = held.days.iter();
    match (days.next(), days.next()) {
        (Some((&oldest, &counts)), Some((&kept, _)))
            if days.next().is_none() && !held.days.contains_key(&day) =>
        {
            if day < oldest {
                KeyUpdate::Late { last_use }
            } else {
                KeyUpdate::Archive {
                    last_use,
                    day: oldest,
                    counts,
                    kept,
                }
            }
        }
        _ => KeyUpdate::Add { last_use },
    }
}

/// Where an update of a key's figures puts D's counts.
enum DayCounts {
    /// Held, beside the other day held (if any).
    Held,
    /// Held, in place of `old` (holding `counts`), which moves out; `kept` stays.
    Replacing {
        old: NaiveDate,
        counts: Outcomes,
        kept: NaiveDate,
    },
    /// Not on the figures item: in D's own day item.
    Elsewhere,
}

impl DynamoStore {
    /// The writes of entry `k` (day `day`) of `account`'s record, by `how`, each with the part
    /// it is. `day_ttl` gives a day item's expiry; a day already past it is not written.
    pub(super) fn key_entry_writes(
        &self,
        account: &str,
        day: NaiveDate,
        k: &KeyUse,
        how: KeyUpdate,
        day_ttl: impl Fn(NaiveDate) -> i64,
    ) -> StoreResult<Vec<(TransactWriteItem, Part)>> {
        let own_day = |d: NaiveDate, o: Outcomes| -> StoreResult<Vec<(TransactWriteItem, Part)>> {
            let ttl = day_ttl(d);
            if ttl <= chrono::Utc::now().timestamp() {
                return Ok(Vec::new());
            }
            let pk = usage_pk(account, Some(&k.key_id));
            Ok(vec![(
                self.add_day(pk, usage_sk(d), o, ttl)?,
                Part::Figures,
            )])
        };
        let update = |last_use, counts| -> StoreResult<(TransactWriteItem, Part)> {
            Ok((
                self.figures_update(account, day, k, last_use, counts)?,
                Part::Figures,
            ))
        };
        Ok(match how {
            KeyUpdate::Gone => Vec::new(),
            KeyUpdate::Adopt => self.adoption(account, day, k)?,
            KeyUpdate::Add { last_use } => vec![update(last_use, DayCounts::Held)?],
            KeyUpdate::Late { last_use } => {
                let mut writes = vec![update(last_use, DayCounts::Elsewhere)?];
                writes.extend(own_day(day, k.outcomes)?);
                writes
            }
            KeyUpdate::Archive {
                last_use,
                day: old,
                counts,
                kept,
            } => {
                let mut writes = vec![update(
                    last_use,
                    DayCounts::Replacing { old, counts, kept },
                )?];
                writes.extend(own_day(old, counts)?);
                writes
            }
        })
    }

    /// The adoption of a figures item by a key from before them: a check that its record exists,
    /// and the item, made with this entry's figures.
    fn adoption(
        &self,
        account: &str,
        day: NaiveDate,
        k: &KeyUse,
    ) -> StoreResult<Vec<(TransactWriteItem, Part)>> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(account_pk(account), key_sk(&k.key_id))))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| build_error("building a condition check", e))?;
        let mut item = figures_key(account, &k.key_id);
        item.insert("request_count".into(), n(k.outcomes.total()));
        item.insert("last_used_at".into(), last_used_at(k)?);
        item.insert("last_used_ip".into(), last_used_ip(k));
        item.insert("last_used_ms".into(), last_used_ms(k));
        item.insert("days".into(), AttributeValue::Ss(vec![day.to_string()]));
        for (what, count) in by_outcome(k.outcomes).into_iter().filter(|(_, c)| *c > 0) {
            item.insert(held_name(what, day), n(count));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| build_error("building a put", e))?;
        Ok(vec![
            (
                TransactWriteItem::builder().condition_check(check).build(),
                Part::Record,
            ),
            (TransactWriteItem::builder().put(put).build(), Part::Figures),
        ])
    }

    /// The update of a key's figures item by entry `k` of day `day`: count it, take its last
    /// use if `last_use` (on condition that no later one is stored), and put its day's counts
    /// where `counts` says, on condition that the days held are as that assumes.
    fn figures_update(
        &self,
        account: &str,
        day: NaiveDate,
        k: &KeyUse,
        last_use: bool,
        counts: DayCounts,
    ) -> StoreResult<TransactWriteItem> {
        let mut set = vec!["request_count = if_not_exists(request_count, :zero) + :n".to_owned()];
        let mut add = Vec::new();
        let mut remove = Vec::new();
        let mut conditions = vec!["attribute_exists(pk)".to_owned()];
        let mut b = Update::builder()
            .set_key(Some(figures_key(account, &k.key_id)))
            .expression_attribute_values(":n", n(k.outcomes.total()))
            .expression_attribute_values(":zero", n(0));
        if last_use {
            set.push("last_used_at = :at, last_used_ip = :ip, last_used_ms = :ms".into());
            conditions.push("(attribute_not_exists(last_used_ms) OR last_used_ms <= :ms)".into());
            b = b
                .expression_attribute_values(":at", last_used_at(k)?)
                .expression_attribute_values(":ip", last_used_ip(k))
                .expression_attribute_values(":ms", last_used_ms(k));
        }
        if !matches!(counts, DayCounts::Elsewhere) {
            for (i, (what, count)) in by_outcome(k.outcomes).into_iter().enumerate() {
                if count > 0 {
                    add.push(format!("#h{i} :h{i}"));
                    b = b
                        .expression_attribute_names(format!("#h{i}"), held_name(what, day))
                        .expression_attribute_values(format!(":h{i}"), n(count));
                }
            }
        }
        match counts {
            DayCounts::Elsewhere => {}
            DayCounts::Held => {
                add.push("days :days".into());
                conditions.push(
                    "(attribute_not_exists(days) OR contains(days, :day) OR size(days) < :held)"
                        .into(),
                );
                b = b
                    .expression_attribute_values(":day", s(day.to_string()))
                    .expression_attribute_values(":days", AttributeValue::Ss(vec![day.to_string()]))
                    .expression_attribute_values(":held", n(HELD_DAYS as u64));
            }
            DayCounts::Replacing { old, counts, kept } => {
                set.push("days = :days".into());
                conditions.push(
                    "contains(days, :old) AND contains(days, :kept) AND size(days) = :held".into(),
                );
                b = b
                    .expression_attribute_values(":old", s(old.to_string()))
                    .expression_attribute_values(":kept", s(kept.to_string()))
                    .expression_attribute_values(":held", n(HELD_DAYS as u64))
                    .expression_attribute_values(
                        ":days",
                        AttributeValue::Ss(vec![kept.to_string(), day.to_string()]),
                    );
                for (i, (what, count)) in by_outcome(counts).into_iter().enumerate() {
                    remove.push(format!("#o{i}"));
                    conditions.push(if count == 0 {
                        format!("(attribute_not_exists(#o{i}) OR #o{i} = :o{i})")
                    } else {
                        format!("#o{i} = :o{i}")
                    });
                    b = b
                        .expression_attribute_names(format!("#o{i}"), held_name(what, old))
                        .expression_attribute_values(format!(":o{i}"), n(count));
                }
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !add.is_empty() {
            expression.push_str(&format!(" ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.update(
            b.update_expression(expression)
                .condition_expression(conditions.join(" AND ")),
        )
    }
}

fn last_used_at(k: &KeyUse) -> StoreResult<AttributeValue> {
    serde_dynamo::to_attribute_value(k.last_used_at)
        .map_err(|e| StoreError::Backend(format!("encoding a time: {e}")))
}

fn last_used_ip(k: &KeyUse) -> AttributeValue {
    k.last_used_ip
        .map_or(AttributeValue::Null(true), |ip| s(ip.to_string()))
}

fn last_used_ms(k: &KeyUse) -> AttributeValue {
    AttributeValue::N(k.last_used_at.timestamp_millis().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn counts(valid: u64) -> Outcomes {
        Outcomes {
            valid,
            rate_limited: 0,
            denied: 1,
        }
    }

    fn held(last_used_ms: i64, days: &[(u32, u64)]) -> Held {
        Held {
            last_used_ms: Some(last_used_ms),
            days: days.iter().map(|&(d, v)| (day(d), counts(v))).collect(),
        }
    }

    #[test]
    fn a_key_without_its_figures_item_adopts_one() {
        assert_eq!(plan(None, day(3), 10), KeyUpdate::Adopt);
    }

    #[test]
    fn a_day_held_or_room_for_it_adds_and_a_later_use_stored_is_kept() {
        assert_eq!(
            plan(Some(&held(5, &[(2, 1), (3, 1)])), day(3), 10),
            KeyUpdate::Add { last_use: true }
        );
        assert_eq!(
            plan(Some(&held(50, &[(2, 1)])), day(3), 10),
            KeyUpdate::Add { last_use: false }
        );
        assert_eq!(
            plan(Some(&Held::default()), day(3), 10),
            KeyUpdate::Add { last_use: true }
        );
    }

    #[test]
    fn a_third_day_moves_the_oldest_out_and_an_older_one_goes_to_its_own_item() {
        assert_eq!(
            plan(Some(&held(5, &[(2, 7), (3, 1)])), day(4), 10),
            KeyUpdate::Archive {
                last_use: true,
                day: day(2),
                counts: counts(7),
                kept: day(3),
            }
        );
        assert_eq!(
            plan(Some(&held(50, &[(2, 7), (3, 1)])), day(1), 10),
            KeyUpdate::Late { last_use: false }
        );
    }

    #[test]
    fn held_days_are_read_from_their_attributes() {
        let item: Item = [
            (
                "days",
                AttributeValue::Ss(vec!["2026-11-02".into(), "2026-11-03".into()]),
            ),
            ("valid@2026-11-02", n(7)),
            ("denied@2026-11-02", n(1)),
            ("valid@2026-11-03", n(1)),
            ("denied@2026-11-03", n(1)),
            ("last_used_ms", n(5)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(Held::of(&item).unwrap(), held(5, &[(2, 7), (3, 1)]));
        let mut bad = item.clone();
        bad.insert("valid@2026-11-03".into(), s("seven"));
        assert!(Held::of(&bad).is_err());
        bad = item;
        bad.insert("days".into(), AttributeValue::Ss(vec!["yesterday".into()]));
        assert!(Held::of(&bad).is_err());
    }
}
