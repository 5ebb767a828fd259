//! Text tables for the CLI (`tango status`, `tango simulate`, the demo's summary), laid
//! out by comfy-table: no borders, two spaces between columns, numbers right-aligned,
//! no trailing spaces, so they read like `kubectl get` and diff cleanly.

use comfy_table::{presets, CellAlignment, Table};

/// How a column's cells sit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table with this header; each column aligned as given.
pub(crate) fn new(header: &[(&str, Align)]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|(h, _)| *h).collect::<Vec<_>>());
    let last = header.len().saturating_sub(1);
    for (i, (_, align)) in header.iter().enumerate() {
        if let Some(c) = t.column_mut(i) {
            c.set_padding((0, if i == last { 0 } else { 2 }));
            if *align == Align::Right {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
    }
    t
}

/// The table's lines, each prefixed with `indent`, ending in a newline.
pub(crate) fn render(t: &Table, indent: &str) -> String {
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(indent);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_with_numbers_on_the_right() {
        let mut t = new(&[("backend", Align::Left), ("requests", Align::Right)]);
        t.add_row(vec!["a", "7"]);
        t.add_row(vec!["longer-name", "12345"]);
        assert_eq!(
            render(&t, "  "),
            "  backend      requests\n  a                   7\n  longer-name     12345\n"
        );
    }
}
