//! Fuzz configuration loading (`tango_core::config::parse`) with any text: it accepts
//! it or reports problems, each rendered at its line and column, and never panics. An
//! accepted configuration also goes through the checklist `tango check` runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Relative paths (TLS files) resolve against this; parsing reads no file.
    let base = Path::new("/nonexistent-fuzz-base");
    match tango_core::config::parse("fuzz.toml", text, base) {
        Ok(loaded) => {
            let diags = tango_core::lint::check(&loaded);
            let _ = tango_core::lint::report::human(&loaded.source, &diags, &[]);
        }
        Err(e) => {
            // Rendering slices the text at each problem's span.
            assert!(!e.render().is_empty());
        }
    }
});
