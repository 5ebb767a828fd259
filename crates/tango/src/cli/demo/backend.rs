//! A demo backend: answers every request with its name after a configurable delay,
//! reading (and discarding) any request body first.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args)]
pub(crate) struct BackendArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// The name it answers with.
    #[arg(long)]
    name: String,
    /// Delay before each answer.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    latency: Duration,
}

pub(crate) async fn run_backend(args: BackendArgs) -> anyhow::Result<()> {
    let l = tokio::net::TcpListener::bind(args.listen).await?;
    println!("demo backend {} on http://{}", args.name, l.local_addr()?);
    tokio::select! {
        _ = serve(l, args.name, args.latency) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

pub(crate) async fn serve(listener: tokio::net::TcpListener, name: String, latency: Duration) {
    let body = Bytes::from(format!("{name}\n"));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        let _ = req.into_body().collect().await;
                        if !latency.is_zero() {
                            tokio::time::sleep(latency).await;
                        }
                        Ok::<_, Infallible>(http::Response::new(Full::new(body)))
                    }
                });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
