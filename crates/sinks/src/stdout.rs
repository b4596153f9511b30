//! The `stdout` sink: `<key_name> (<key_id>): <secret>` once, as one line, to the writer the
//! caller gave [`crate::Sinks::new`] (the terminal in the CLI). The line goes out in a single
//! write and is flushed at once, so it is not split or held in a buffer.

use std::io::Write;

use crate::{Delivery, Receipt, SinkError};

pub(crate) fn deliver(out: &mut dyn Write, delivery: &Delivery<'_>) -> Result<Receipt, SinkError> {
    let line = format!(
        "{} ({}): {}\n",
        delivery.key_name, delivery.key_id, delivery.secret
    );
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| SinkError::Stdout {
            key_name: delivery.key_name.to_owned(),
            source,
        })?;
    Ok(Receipt {
        description: "shown once on standard output".to_owned(),
    })
}
