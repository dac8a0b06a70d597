//! `harmony-cluster`: a local cluster in one command, for people and for trying the cluster
//! shape. It starts a private PostgreSQL (`wal_level=logical`), Redis and Kafka-API broker (tansu)
//! in temporary directories, then one `harmony` process per `--nodes` entry with those roles, each
//! on its own port, and waits. Ctrl-C (or SIGTERM) stops the nodes gracefully and removes the
//! services and their data. `--measure N` sends N messages across nodes, prints send → delivery
//! latency, and exits. `--history dynamodb` keeps the message store in a private dynalite (the
//! DynamoDB API) instead of PostgreSQL.
//!
//! Usage (through `scripts/cluster`, which builds what it needs):
//!   harmony-cluster [--harmony PATH] [--nodes "api,gateway api,gateway fanout,sink,projector,relay"]
//!                   [--port 8080] [--measure N] [--history postgres|dynamodb]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use harmony_testkit::cluster::TestCluster;
use harmony_testkit::TestApp;

struct Args {
    harmony: PathBuf,
    nodes: Vec<String>,
    port: u16,
    measure: Option<usize>,
    dynamodb: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        harmony: PathBuf::from("target/release/harmony"),
        nodes: vec![
            "api,gateway".into(),
            "api,gateway".into(),
            "fanout,sink,projector,relay".into(),
        ],
        port: 8080,
        measure: None,
        dynamodb: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--harmony" => args.harmony = PathBuf::from(value()?),
            "--nodes" => args.nodes = value()?.split_whitespace().map(str::to_owned).collect(),
            "--port" => args.port = value()?.parse().context("--port")?,
            "--measure" => args.measure = Some(value()?.parse().context("--measure")?),
            "--history" => {
                args.dynamodb = match value()?.as_str() {
                    "dynamodb" => true,
                    "postgres" => false,
                    other => bail!("--history is postgres or dynamodb, not {other}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "{}",
                    include_str!("harmony-cluster.rs")
                        .lines()
                        .take_while(|l| l.starts_with("//!"))
                        .map(|l| l.trim_start_matches("//!").trim_start())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}; see --help"),
        }
    }
    if args.nodes.is_empty() {
        bail!("--nodes names no node");
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    anyhow::ensure!(
        args.harmony.exists(),
        "{} does not exist: build it (scripts/cluster does)",
        args.harmony.display()
    );
    eprintln!("starting PostgreSQL, Redis and the broker…");
    let cluster = if args.dynamodb {
        TestCluster::with_dynamodb().await?
    } else {
        TestCluster::start().await?
    };
    let mut nodes = Vec::new();
    for (i, roles) in args.nodes.iter().enumerate() {
        let port = args.port + i as u16;
        let mut env = cluster.env(roles);
        env.push(("HARMONY_LISTEN".into(), format!("127.0.0.1:{port}")));
        let node = TestApp::process(&args.harmony, &env)
            .await
            .with_context(|| format!("starting node {i} ({roles})"))?;
        println!("node {i}: http://{} roles={roles}", node.addr);
        nodes.push((roles.clone(), node));
    }
    println!(
        "PostgreSQL: {}\nRedis: {}\nbroker: {}",
        cluster.postgres.url("state"),
        cluster.redis.url(),
        cluster.broker.bootstrap()
    );
    if let Some(dynamo) = &cluster.dynamo {
        println!(
            "message store: DynamoDB (dynalite) at {}",
            dynamo.endpoint()
        );
    }
    match args.measure {
        Some(n) => {
            measure(&nodes, n).await?;
            broker_share(&cluster, n).await?;
        }
        None => {
            println!("cluster up; Ctrl-C stops it and removes its data");
            wait_for_signal().await;
        }
    }
    eprintln!("stopping…");
    for (_, node) in nodes {
        node.stop().await?;
    }
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

/// Sends `n` messages through the first api node at 20 per second and times each from the send
/// to its arrival on a client of the last gateway node (another node when there are two);
/// prints the distribution.
async fn measure(nodes: &[(String, TestApp)], n: usize) -> anyhow::Result<()> {
    let api = nodes
        .iter()
        .find(|(r, _)| r.contains("api") || r == "all")
        .map(|(_, a)| a)
        .context("no api node")?;
    let gateway = nodes
        .iter()
        .rev()
        .find(|(r, _)| r.contains("gateway") || r == "all")
        .map(|(_, a)| a)
        .context("no gateway node")?;
    println!(
        "sending through {} and receiving on {}",
        api.addr, gateway.addr
    );
    let (ann, bob, cat) = (
        api.register("ann").await?,
        api.register("bob").await?,
        api.register("cat").await?,
    );
    let chat = api.group(&ann, "latency", &[&bob, &cat]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    let mut delivery = Vec::with_capacity(n);
    let mut acks = Vec::with_capacity(n);
    let mut stored = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let sent = api.send(&ann, &chat, &format!("probe {i}")).await?;
        acks.push(started.elapsed());
        let acked = Instant::now();
        loop {
            let frame = ws.next_of("message").await?;
            if frame["message"]["id"] == sent["id"] {
                break;
            }
        }
        delivery.push(started.elapsed());
        // The sink's lag: until the message is readable from history.
        let path = format!("/api/v1/chats/{chat}/messages?limit=1");
        while api.get(&path, &bob.access).await?.body["messages"][0]["id"] != sent["id"] {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stored.push(acked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report(
        "send → 201 (the broker's produce ack, then the fan-out's placement)",
        &mut acks,
    );
    report("send → delivery on another node", &mut delivery);
    report("201 → readable in history (sink)", &mut stored);

    // A member's removal until another member's session on another node hears of it.
    let mut removals = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let path = format!("/api/v1/chats/{chat}/members/{}", cat.id);
        let reply = api.delete(&path, &ann.access).await?;
        anyhow::ensure!(reply.status.is_success(), "remove: {reply:?}");
        loop {
            let frame = ws.next_of("member_removed").await?;
            if frame["user_id"] == cat.id.as_str() {
                break;
            }
        }
        removals.push(started.elapsed());
        let back = api
            .post(
                &format!("/api/v1/chats/{chat}/members"),
                &ann.access,
                serde_json::json!({"user_id": cat.id}),
            )
            .await?;
        anyhow::ensure!(back.status.is_success(), "add back: {back:?}");
        ws.next_of("member_added").await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report(
        "member removed → every gateway (relay, projector)",
        &mut removals,
    );

    // State changes: commit → outbox → WAL → relay → events topic → projector → gateway.
    let mut effects = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("renamed {i}");
        let started = Instant::now();
        let reply = api
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/chats/{chat}"),
                Some(&ann.access),
                Some(serde_json::json!({"name": name})),
            )
            .await?;
        anyhow::ensure!(reply.status.is_success(), "rename: {reply:?}");
        loop {
            let frame = ws.next_of("chat_updated").await?;
            if frame["chat"]["name"] == name.as_str() {
                break;
            }
        }
        effects.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report(
        "state change → effect on another node (relay, projector)",
        &mut effects,
    );
    Ok(())
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
    };
    println!(
        "{what}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

/// The broker's own share: produce (acks=all) to consume (fetch.wait.max.ms as configured) on a
/// topic of its own, with the same client settings Harmony uses, at the same rate.
async fn broker_share(cluster: &TestCluster, n: usize) -> anyhow::Result<()> {
    use harmony_core::model::{Author, NewMessage};
    use harmony_core::ports::{LogConsumer, LogEntry};
    use harmony_core::values::{DisplayName, MessageContent, Username};
    let settings = harmony_kafka::KafkaSettings::new(&cluster.broker.bootstrap(), "harmony.probe");
    harmony_kafka::ensure_topic(&settings).await?;
    let log = harmony_kafka::KafkaProducer::new(settings.clone())?;
    let mut cursor = harmony_kafka::KafkaCursor::new(&settings, "probe")?;
    let author = Author {
        id: harmony_core::UserId::new(),
        username: Username::parse("probe")?,
        display_name: DisplayName::parse("probe")?,
    };
    // Let the consumer join its group before timing.
    let warm = NewMessage {
        id: harmony_core::MessageId::new(),
        chat_id: harmony_core::ChatId::new(),
        author: author.clone(),
        content: MessageContent::parse("warm-up")?,
        client_msg_id: None,
        created_at: harmony_core::now(),
        change: None,
        reply_to: None,
        mentions: Default::default(),
        state: Default::default(),
        notice: None,
    };
    log.produce(&warm).await?;
    while cursor
        .poll(10, Duration::from_millis(500))
        .await?
        .is_empty()
    {}
    let (mut acks, mut consumed) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let message = NewMessage {
            id: harmony_core::MessageId::new(),
            chat_id: harmony_core::ChatId::new(),
            author: author.clone(),
            content: MessageContent::parse(&format!("p{i}"))?,
            client_msg_id: None,
            created_at: harmony_core::now(),
            change: None,
            reply_to: None,
            mentions: Default::default(),
            state: Default::default(),
            notice: None,
        };
        let id = message.id;
        let started = Instant::now();
        log.produce(&message).await?;
        acks.push(started.elapsed());
        'wait: loop {
            for d in cursor.poll(10, Duration::from_millis(100)).await? {
                if matches!(&d.entry, LogEntry::Unplaced(m) if m.id == id) {
                    break 'wait;
                }
            }
        }
        consumed.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report("broker only: produce → ack", &mut acks);
    report("broker only: produce → consumed", &mut consumed);
    Ok(())
}
