//! File types to model: parse every value, resolve every reference, apply defaults (from
//! `config::defaults`), and collect every problem with its location, key path and a hint.
//!
//! One module per part of the file; `fields` has the checks they share.

mod admin;
mod fields;
mod guard;
mod headers;
mod health;
mod listener;
mod pool;
mod routes;
mod tls;

#[cfg(test)]
pub(crate) use fields::parse_cidr;
#[cfg(test)]
pub(crate) use headers::parse_template;

use super::file::ConfigFile;
use super::model::Config;
use super::Env;
use crate::diag::Diagnostic;
use fields::V;
use std::path::Path;

/// Validate a parsed file. `base` is the directory relative paths are resolved against.
pub(crate) fn validate(
    file: &ConfigFile,
    base: &Path,
    env: &Env,
) -> Result<Config, Vec<Diagnostic>> {
    let mut v = V {
        base,
        diags: Vec::new(),
    };
    let admin = admin::admin(&mut v, file.admin.as_ref(), env);
    let listeners = listener::listeners(&mut v, &file.listener, admin.listen);
    let pools = pool::pools(&mut v, &file.pool);
    let routes = routes::routes(&mut v, &file.route, &pools);
    let allows = routes::allows(&mut v, &file.allow, &pools);
    let alerts = routes::alerts(&mut v, file.alerts.as_ref());
    let guard = guard::guard(&mut v, file.guard.as_ref(), &pools);
    if v.diags.is_empty() {
        Ok(Config {
            admin,
            listeners,
            routes,
            pools,
            allows,
            alerts,
            guard,
        })
    } else {
        Err(v.diags)
    }
}
