//! Usage by day as an SVG bar chart, each day's bar split by outcome (valid, rate limited,
//! denied), drawn on the server: no script, no chart library. Screen readers get a summary and
//! the numbers as a table.

use chrono::{Duration, NaiveDate};
use keyward_core::usage::DayUsage;
use maud::{Markup, html};

const WIDTH: i64 = 720;
const HEIGHT: i64 = 160;
const AXIS: i64 = 18;

/// The chart of `days` (days without requests are left out of `days`) from `from` to `to`.
pub fn usage(days: &[DayUsage], from: NaiveDate, to: NaiveDate) -> Markup {
    let span = (to - from).num_days().max(0) + 1;
    let all: Vec<DayUsage> = (0..span)
        .map(|i| {
            let date = from + Duration::days(i);
            days.iter()
                .find(|d| d.date == date)
                .cloned()
                .unwrap_or(DayUsage {
                    date,
                    valid: 0,
                    rate_limited: 0,
                    denied: 0,
                    total: 0,
                })
        })
        .collect();
    let max = all.iter().map(|d| d.total).max().unwrap_or(0).max(1);
    let total: u64 = all.iter().map(|d| d.total).sum();
    let valid: u64 = all.iter().map(|d| d.valid).sum();
    let limited: u64 = all.iter().map(|d| d.rate_limited).sum();
    let denied: u64 = all.iter().map(|d| d.denied).sum();
    let slot = WIDTH / span.max(1);
    let bar = (slot - 2).max(1);
    let scale = |n: u64| -> i64 {
        let h = u128::from(n) * u128::from((HEIGHT - AXIS).unsigned_abs()) / u128::from(max);
        i64::try_from(h).unwrap_or(0)
    };
    let summary = format!(
        "Requests per day from {from} to {to}: {total} in all, {valid} valid, {limited} rate limited, {denied} denied."
    );
    html! {
        figure {
            svg class="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(summary) {
                line class="axis" x1="0" y1=(HEIGHT - AXIS) x2=(WIDTH) y2=(HEIGHT - AXIS) {}
                @for (i, day) in all.iter().enumerate() {
                    @let x = i64::try_from(i).unwrap_or(0) * slot + 1;
                    @let base = HEIGHT - AXIS;
                    @let hv = scale(day.valid);
                    @let hr = scale(day.rate_limited);
                    @let hd = scale(day.denied);
                    g {
                        title { (day.date) ": " (day.valid) " valid, " (day.rate_limited) " rate limited, " (day.denied) " denied" }
                        rect class="valid" x=(x) y=(base - hv) width=(bar) height=(hv) {}
                        rect class="rate_limited" x=(x) y=(base - hv - hr) width=(bar) height=(hr) {}
                        rect class="denied" x=(x) y=(base - hv - hr - hd) width=(bar) height=(hd) {}
                    }
                    @if i == 0 {
                        text x=(x) y=(HEIGHT - 4) { (day.date.format("%-d %b")) }
                    } @else if i + 1 == all.len() {
                        text x=(x + bar) y=(HEIGHT - 4) text-anchor="end" { (day.date.format("%-d %b")) }
                    }
                }
            }
            figcaption class="legend" {
                span { i class="valid" {} "Valid " (valid) }
                span { i class="rate_limited" {} "Rate limited " (limited) }
                span { i class="denied" {} "Denied " (denied) }
            }
        }
        details {
            summary { "Requests by day as a table" }
            table {
                thead { tr { th scope="col" { "Day" } th scope="col" { "Valid" } th scope="col" { "Rate limited" } th scope="col" { "Denied" } th scope="col" { "Total" } } }
                tbody {
                    @for day in all.iter().filter(|d| d.total > 0) {
                        tr { td { (day.date) } td { (day.valid) } td { (day.rate_limited) } td { (day.denied) } td { (day.total) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_day_of_the_range_has_a_bar_split_by_outcome() {
        let from = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let to = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap_or_default();
        let days = [DayUsage {
            date: from + Duration::days(1),
            valid: 6,
            rate_limited: 3,
            denied: 1,
            total: 10,
        }];
        let svg = usage(&days, from, to).into_string();
        assert_eq!(svg.matches("class=\"valid\" x=").count(), 3);
        assert!(svg.contains("10 in all, 6 valid, 3 rate limited, 1 denied"));
        assert!(svg.contains("2026-11-02: 6 valid, 3 rate limited, 1 denied"));
    }
}
