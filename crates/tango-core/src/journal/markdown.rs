//! Text made safe for Markdown: journal text carries names, reasons and messages that
//! operators wrote or that rustc-style reports produced (several lines, `|` gutters,
//! `^^^` markers), and pasted as is they turn into tables, headings or stray emphasis.

/// `text` as one line of inline Markdown that reads as written: line breaks become
/// spaces, code spans (balanced backticks) are kept, and outside them every character
/// that could start markup is escaped.
pub(crate) fn inline(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let spans = one_line.matches('`').count();
    let keep_code = spans % 2 == 0 && !one_line.contains("``");
    let chars: Vec<char> = one_line.chars().collect();
    let mut out = String::with_capacity(one_line.len() + 8);
    let mut in_code = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == '`' && keep_code {
            in_code = !in_code;
            out.push(c);
            continue;
        }
        if in_code {
            out.push(c);
            continue;
        }
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        let escape = match c {
            '\\' | '`' | '*' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' | '!' => true,
            // Inside a word (`over_share`) an underscore is never emphasis.
            '_' => !(word(i.checked_sub(1)) && word(Some(i + 1))),
            // What would start a list, a heading or a rule at the start of a line.
            '-' | '+' | '=' => i == 0,
            '.' | ')' => chars[..i].iter().all(char::is_ascii_digit) && i > 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as a fenced code block, every line indented by `indent` (to sit inside a list
/// item); the fence is longer than any run of backticks in the text.
pub(crate) fn code_block(text: &str, indent: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest + 1).max(3));
    let mut out = format!("{indent}{fence}text\n");
    for line in text.lines() {
        out.push_str(indent);
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(indent);
    out.push_str(&fence);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_text_keeps_code_spans_and_escapes_markup() {
        assert_eq!(
            inline("pool `web` has *two* [links]"),
            "pool `web` has \\*two\\* \\[links\\]"
        );
        assert_eq!(
            inline("over_share on b_1 and _x_"),
            "over_share on b_1 and \\_x\\_"
        );
        assert_eq!(inline("a | b\n --> c"), "a \\| b --\\> c");
        assert_eq!(inline("- b2"), "\\- b2");
        assert_eq!(inline("1. x"), "1\\. x");
        assert_eq!(inline("one ` tick"), "one \\` tick");
    }

    #[test]
    fn code_blocks_outlast_backtick_runs() {
        assert_eq!(
            code_block("a\n```b", "  "),
            "  ````text\n  a\n  ```b\n  ````\n"
        );
    }
}
