//! `tango status` and `tango reload`: talk to a running instance's admin API.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(clap::Args)]
pub(crate) struct CtlArgs {
    /// Admin API base URL.
    #[arg(long, default_value = "http://127.0.0.1:9901", env = "TANGO_ADMIN")]
    admin: String,
    /// Bearer token for mutating calls.
    #[arg(long, env = "TANGO_ADMIN_TOKEN")]
    token: Option<String>,
}

/// One request to the admin API; returns the status and the body.
pub(crate) async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut req = http::Request::builder().method(method).uri(&url);
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .context("building the request")?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .with_context(|| format!("{url}: no answer within 30 s"))?
        .with_context(|| {
            format!("cannot reach tango's admin API at {base} (is tango running? set --admin)")
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub(crate) async fn status(args: CtlArgs) -> anyhow::Result<()> {
    let (code, body) = call(&args.admin, "GET", "/api/v1/status", None).await?;
    anyhow::ensure!(code == 200, "admin API answered {code}: {body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).context("the admin API sent something other than JSON")?;
    println!("generation {}", v["generation"]);
    for p in v["pools"].as_array().into_iter().flatten() {
        println!(
            "pool {} ({})",
            p["name"].as_str().unwrap_or("?"),
            p["policy"].as_str().unwrap_or("?")
        );
        println!(
            "  {:<20} {:>8} {:>9} {:>8} {:>10} {:>8}",
            "backend", "weight", "effective", "healthy", "requests", "errors"
        );
        for b in p["backends"].as_array().into_iter().flatten() {
            println!(
                "  {:<20} {:>8} {:>9.2} {:>8} {:>10} {:>8}",
                b["name"].as_str().unwrap_or("?"),
                b["configured_weight"],
                b["effective_weight"].as_f64().unwrap_or(0.0),
                b["healthy"],
                b["requests"],
                b["errors"]
            );
        }
    }
    Ok(())
}

pub(crate) async fn reload(args: CtlArgs) -> anyhow::Result<()> {
    let (code, body) = call(&args.admin, "POST", "/api/v1/reload", args.token.as_deref()).await?;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    match code {
        200 => {
            println!("applied: generation {}", v["generation"]);
            Ok(())
        }
        401 => anyhow::bail!("the admin API wants a token: pass --token or set TANGO_ADMIN_TOKEN"),
        _ => {
            for e in v["errors"].as_array().into_iter().flatten() {
                eprintln!("{}", e.as_str().unwrap_or(""));
            }
            anyhow::bail!(
                "reload rejected ({code}); generation {} keeps serving",
                v["generation"]
            )
        }
    }
}
