//! What the client commands print: JSON for machines (`--json`, the API's own shapes), plain
//! tables and notes for people. Results go to standard output, notes and warnings to standard
//! error, so `keyward keys create ... > secret.txt` captures only the secret. A closed pipe
//! (`keyward keys list | head`) ends the output quietly.

use std::io::{ErrorKind, Write};

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use keyward_core::validation::Warning;
use serde::Serialize;

use crate::error::CliError;

/// Writes `text` and a newline to standard output.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(CliError::Io {
            action: "write to",
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Writes `value` as pretty JSON to standard output.
pub fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Input(format!("could not write the answer as JSON: {e}")))?;
    print(&text)
}

/// A note for the person at the terminal, on standard error.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Each warning of an answer, on standard error.
pub fn warn(warnings: &[Warning]) {
    for w in warnings {
        note(&format!(
            "warning: {}: {}",
            clean(&w.field),
            clean(&w.message)
        ));
    }
}

/// A table without borders, columns two spaces apart, the header in capitals.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

/// Label-value lines, the labels aligned.
pub fn fields(rows: Vec<(&str, String)>) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    for (label, value) in rows {
        table.add_row(vec![label.to_owned(), value]);
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

/// An instant as people read it in a table: UTC to the minute.
pub fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// An instant to the second, with its zone, for a record's own fields.
pub fn when_exact(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Text from the server as it may be shown on a terminal: control characters (escape
/// sequences, line breaks) written as escapes, so no stored text can move the cursor, recolour
/// the terminal or forge a line of output.
pub fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(clean("ci bot"), "ci bot");
        assert_eq!(clean("a\u{1b}[31mred\nb"), "a\\u{1b}[31mred\\nb");
    }

    #[test]
    fn tables_align_columns_without_borders() {
        let text = table(
            &["ID", "NAME"],
            vec![
                vec!["key_1".into(), "ci".into()],
                vec!["key_22".into(), "deploy".into()],
            ],
        );
        assert_eq!(text, "ID      NAME\nkey_1   ci\nkey_22  deploy");
    }
}
