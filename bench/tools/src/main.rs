//! Benchmark drivers for disco: bulk registration into etcd or ZooKeeper,
//! registration to answer latency, and registration churn.

mod zk;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Parser, Subcommand};
use etcd_client::{Client, PutOptions, Txn, TxnOp};
use tokio::net::UdpSocket;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Puts every registration of a registrations.jsonl file into etcd.
    Load {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value = "/disco")]
        prefix: String,
        #[arg(long)]
        file: String,
    },
    /// Registers instances one at a time and times each from the put's
    /// acknowledgement to the first DNS answer that contains it; with
    /// several `--dns`, to the moment the last of them answers it (the
    /// slowest replica).
    Latency {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value = "/disco")]
        prefix: String,
        #[arg(long, required = true)]
        dns: Vec<SocketAddr>,
        /// The service the instances are registered in (fresh names each run).
        #[arg(long, default_value = "latency")]
        service: String,
        #[arg(long, default_value_t = 200)]
        count: usize,
    },
    /// Times SRV queries for one name over one TCP connection.
    TcpSrv {
        #[arg(long)]
        dns: SocketAddr,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 200)]
        count: usize,
    },
    /// Opens TCP connections to a DNS server and holds them: a query on
    /// each every `keepalive` seconds (0: none, truly idle), for `seconds`;
    /// prints how many were opened and how many the server closed.
    TcpHold {
        #[arg(long)]
        dns: SocketAddr,
        #[arg(long, default_value_t = 10000)]
        count: usize,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        #[arg(long, default_value_t = 0)]
        keepalive: u64,
    },
    /// Puts and deletes registrations at a fixed rate for a fixed time.
    Churn {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, default_value = "/disco")]
        prefix: String,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// Which store: `--etcd HOST:PORT` or `--zk HOST:PORT,...`.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct StoreArgs {
    #[arg(long)]
    etcd: Option<String>,
    #[arg(long)]
    zk: Option<String>,
}

/// A connected store, writing native registrations.
#[derive(Clone)]
enum Store {
    Etcd(Client),
    Zk(zookeeper_client::Client),
}

impl Store {
    async fn connect(args: &StoreArgs) -> Result<Store> {
        match (&args.etcd, &args.zk) {
            (Some(etcd), _) => Ok(Store::Etcd(Client::connect([etcd], None).await?)),
            (_, Some(zk)) => Ok(Store::Zk(zk::connect(zk).await?)),
            _ => bail!("--etcd or --zk"),
        }
    }

    /// Makes the service's parent node (ZooKeeper needs one).
    async fn prepare(&self, prefix: &str, service: &str) -> Result<()> {
        match self {
            Store::Etcd(_) => Ok(()),
            Store::Zk(client) => zk::service_node(client, prefix, service).await,
        }
    }

    async fn put(&self, key: String, value: String) -> Result<()> {
        match self {
            Store::Etcd(client) => {
                client.kv_client().put(key, value, Some(PutOptions::new())).await?;
                Ok(())
            }
            Store::Zk(client) => zk::put(client, &key, value.as_bytes()).await,
        }
    }

    async fn delete(&self, key: String) -> Result<()> {
        match self {
            Store::Etcd(client) => {
                client.kv_client().delete(key, None).await?;
                Ok(())
            }
            Store::Zk(client) => zk::delete(client, &key).await,
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Load { store, prefix, file } => load(&Store::connect(&store).await?, &prefix, &file).await,
        Command::Latency { store, prefix, dns, service, count } => {
            latency(&Store::connect(&store).await?, &prefix, &dns, &service, count).await
        }
        Command::Churn { store, prefix, rate, seconds } => {
            churn(&Store::connect(&store).await?, &prefix, rate, seconds).await
        }
        Command::TcpSrv { dns, name, count } => tcp_srv(dns, &name, count).await,
        Command::TcpHold { dns, count, seconds, keepalive } => tcp_hold(dns, count, seconds, keepalive).await,
    }
}

fn key(prefix: &str, service: &str, instance: &str) -> String {
    format!("{prefix}/services/{service}/{instance}")
}

async fn load(store: &Store, prefix: &str, file: &str) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let client = match store {
        Store::Etcd(client) => client.clone(),
        Store::Zk(client) => return load_zk(client, prefix, &text).await,
    };
    let started = Instant::now();
    let mut ops = Vec::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line)?;
        let service = r["service"].as_str().context("service")?;
        let instance = r["instance"].as_str().context("instance")?;
        ops.push(TxnOp::put(key(prefix, service, instance), r["value"].to_string(), None));
    }
    let count = ops.len();
    // etcd allows 128 operations per transaction by default; 8 in flight.
    let mut batches = ops.chunks(128).map(<[TxnOp]>::to_vec).collect::<Vec<_>>().into_iter();
    loop {
        let mut inflight = Vec::new();
        for batch in batches.by_ref().take(8) {
            let mut kv = client.kv_client();
            inflight.push(tokio::spawn(async move { kv.txn(Txn::new().and_then(batch)).await }));
        }
        if inflight.is_empty() {
            break;
        }
        for task in inflight {
            task.await??;
        }
    }
    eprintln!("loaded {count} registrations in {:.1?}", started.elapsed());
    Ok(())
}

async fn load_zk(client: &zookeeper_client::Client, prefix: &str, text: &str) -> Result<()> {
    let started = Instant::now();
    let mut nodes = Vec::new();
    let mut services = std::collections::BTreeSet::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line)?;
        let service = r["service"].as_str().context("service")?;
        let instance = r["instance"].as_str().context("instance")?;
        services.insert(service.to_owned());
        nodes.push((key(prefix, service, instance), r["value"].to_string()));
    }
    for service in &services {
        zk::service_node(client, prefix, service).await?;
    }
    zk::load(client, &nodes).await?;
    eprintln!("loaded {} registrations in {:.1?}", nodes.len(), started.elapsed());
    Ok(())
}

/// A DNS query for `name` A, by hand: this tool times, it does not parse.
fn query(id: u16, name: &str) -> Vec<u8> {
    query_type(id, name, 1)
}

/// A DNS query for `name` of type `qtype`.
fn query_type(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut packet = id.to_be_bytes().to_vec();
    packet.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.push(0);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&[0, 1]);
    packet
}

async fn tcp_srv(dns: SocketAddr, name: &str, count: usize) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(dns).await?;
    stream.set_nodelay(true)?;
    let mut samples = Vec::with_capacity(count);
    let mut answers = 0;
    let mut size = 0;
    for i in 0..count {
        let packet = query_type(i as u16, name, 33);
        let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&packet);
        let started = Instant::now();
        stream.write_all(&framed).await?;
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await?;
        let mut response = vec![0u8; u16::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut response).await?;
        samples.push(started.elapsed());
        answers = u16::from_be_bytes([response[6], response[7]]);
        size = response.len();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "SRV {name} over TCP, {count} queries: {answers} records, {size} bytes; p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}

async fn tcp_hold(dns: SocketAddr, count: usize, seconds: u64, keepalive: u64) -> Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let opened = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for n in 0..count {
        // Batches of 256, so that the listen backlog is not overrun.
        if n % 256 == 255 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (opened, closed, failed) = (opened.clone(), closed.clone(), failed.clone());
        tasks.spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(dns).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            opened.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 512];
            let mut id = n as u16;
            loop {
                let wake = if keepalive > 0 {
                    (tokio::time::Instant::now() + Duration::from_secs(keepalive)).min(until)
                } else {
                    until
                };
                tokio::select! {
                    read = stream.read(&mut buf) => {
                        // Only answers to our own queries come: a read of
                        // 0 or an error is the server closing.
                        if matches!(read, Ok(0) | Err(_)) {
                            closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                    _ = tokio::time::sleep_until(wake) => {
                        if tokio::time::Instant::now() >= until {
                            return;
                        }
                        id = id.wrapping_add(1);
                        let packet = query(id, "svc0.disco.internal");
                        let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&packet);
                        if stream.write_all(&framed).await.is_err() {
                            closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
        });
    }
    eprintln!("tcp-hold: {} connections opened in {:.1?}", opened.load(Ordering::Relaxed), started.elapsed());
    while tasks.join_next().await.is_some() {}
    println!(
        "tcp-hold: {count} asked, {} opened, {} failed to connect, {} closed by the server within {seconds} s",
        opened.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        closed.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Whether a response to `id` answers with at least one record.
fn answered(response: &[u8], id: u16) -> bool {
    response.len() > 12 && response[..2] == id.to_be_bytes() && response[3] & 0x0f == 0 && response[7] > 0
}

async fn latency(store: &Store, prefix: &str, servers: &[SocketAddr], service: &str, count: usize) -> Result<()> {
    store.prepare(prefix, service).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let mut samples = Vec::with_capacity(count);
    let mut buf = [0u8; 1500];
    let mut id = 0u16;
    // Names of this run alone: a name an earlier run left registered
    // already answers, and its sample would time one round trip, not the
    // registration reaching the servers.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() % 1_000_000_000;
    let mut registered = Vec::with_capacity(count);
    for i in 0..count {
        let instance = format!("lat{run}-{i}");
        let name = format!("{instance}.{service}.disco.internal");
        for &dns in servers {
            id = id.wrapping_add(1);
            socket.send_to(&query(id, &name), dns).await?;
            if let Ok(Ok((len, _))) = tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await {
                ensure!(!answered(&buf[..len], id), "{name} answers before it is registered");
            }
        }
        let value = format!(r#"{{"address":"10.250.{}.{}","port":80}}"#, i / 256, i % 256);
        let key = key(prefix, service, &instance);
        store.put(key.clone(), value).await?;
        registered.push(key);
        let acknowledged = Instant::now();
        let deadline = acknowledged + Duration::from_secs(5);
        // Each server is polled until it answers; the sample is when the
        // last one did.
        for &dns in servers {
            loop {
                id = id.wrapping_add(1);
                socket.send_to(&query(id, &name), dns).await?;
                match tokio::time::timeout(Duration::from_millis(50), socket.recv_from(&mut buf)).await {
                    Ok(Ok((len, _))) if answered(&buf[..len], id) => break,
                    _ if Instant::now() > deadline => bail!("{name} not answered by {dns} within 5 s"),
                    _ => {}
                }
            }
        }
        samples.push(acknowledged.elapsed());
    }
    for key in registered {
        store.delete(key).await?;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let servers = match servers.len() {
        1 => String::new(),
        n => format!(", the last of {n} servers"),
    };
    println!(
        "registration to answer{servers}, {count} registrations: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        at(0.50).as_secs_f64() * 1e3,
        at(0.90).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3
    );
    Ok(())
}

async fn churn(store: &Store, prefix: &str, rate: u64, seconds: u64) -> Result<()> {
    store.prepare(prefix, "churn").await?;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut done = 0u64;
    let pool = 1000;
    let mut tasks = tokio::task::JoinSet::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        ticker.tick().await;
        let i = done % (2 * pool);
        let instance = format!("churn-{}", i % pool);
        let k = key(prefix, "churn", &instance);
        let store = store.clone();
        // First pass registers, second withdraws: 1,000 live at most.
        if i < pool {
            let value = format!(r#"{{"address":"10.251.{}.{}","port":80}}"#, i / 256, i % 256);
            tasks.spawn(async move { store.put(k, value).await });
        } else {
            tasks.spawn(async move { store.delete(k).await });
        }
        done += 1;
        while let Some(result) = tasks.try_join_next() {
            result??;
        }
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("churn: {done} registrations and withdrawals in {elapsed:.1} s ({:.0}/s)", done as f64 / elapsed);
    Ok(())
}
