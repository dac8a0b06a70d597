//! A cluster whose message store is DynamoDB (a private dynalite; decision record 0005):
//! history, resume and message changes through the front door as on PostgreSQL; and DynamoDB
//! going away: live delivery goes on, history answers 503, and the sink catches up once it is
//! back, with nothing lost or doubled.

mod scenarios;

use harmony_testkit::cluster::TestCluster;
use harmony_testkit::eventually;
use reqwest::StatusCode;
use scenarios::{Shape, R};
use serde_json::{json, Value};

const API: &str = "api,fanout,sink,projector,relay";

#[tokio::test]
async fn history_and_changes_on_dynamodb_match_the_contract() -> R {
    let cluster = TestCluster::with_dynamodb().await?;
    let api = cluster.node(API).await?;
    let gateway = cluster.node("api,gateway").await?;
    scenarios::changes_live_history_and_resume(&api, &gateway, Shape::Cluster).await?;
    scenarios::replies_and_mentions(&api, &gateway).await?;
    scenarios::removed_members_and_racing_reactions(&api, &gateway).await?;
    scenarios::timeline_lines(&api, &gateway).await?;
    scenarios::targets_elsewhere_are_not_found(&api, &gateway).await?;
    Ok(())
}

#[tokio::test]
async fn with_dynamodb_down_live_delivery_goes_on_and_the_sink_catches_up() -> R {
    let mut cluster = TestCluster::with_dynamodb().await?;
    let api = cluster.node(API).await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    for i in 1..=5 {
        api.send(&ann, &chat, &format!("before {i}")).await?;
    }
    eventually("five messages in history", || async {
        Ok((api.all_history(&bob, &chat).await?.len() == 5).then_some(()))
    })
    .await?;

    let dynamo = cluster
        .dynamo
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("no dynamo"))?;
    dynamo.stop();
    for i in 6..=15 {
        api.send(&ann, &chat, &format!("during {i}")).await?;
    }
    let mut live = Vec::new();
    while live.last() != Some(&15) {
        let frame = ws.next_of("message").await?;
        live.push(frame["message"]["seq"].as_i64().unwrap_or(-1));
    }
    assert_eq!(
        live,
        (1..=15).collect::<Vec<_>>(),
        "live delivery, in order, while DynamoDB is down"
    );
    let page = api
        .get(&format!("/api/v1/chats/{chat}/messages"), &bob.access)
        .await?;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{page:?}");

    dynamo.start_again().await?;
    let all = eventually("the sink caught up", || async {
        let all = api.all_history(&bob, &chat).await.ok();
        Ok(all.filter(|all| all.len() >= 15))
    })
    .await?;
    let seqs: Vec<i64> = all.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=15).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );
    assert_eq!(all[14]["content"], "during 15");
    ws.close().await;
    Ok(())
}

#[tokio::test]
async fn history_is_complete_and_in_order_after_a_sink_kill() -> R {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_harmony"));
    let cluster = TestCluster::with_dynamodb().await?;
    let api = cluster.node("api,fanout,projector,relay").await?;
    let sink = cluster.process(bin, "sink").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    for i in 1..=15 {
        api.send(&ann, &chat, &format!("m {i}")).await?;
    }
    // Killed while it may be between a batch's writes and its commit to the log.
    sink.kill9().await?;
    for i in 16..=30 {
        api.send(&ann, &chat, &format!("m {i}")).await?;
    }
    let _sink = cluster.process(bin, "sink").await?;
    let all = eventually("history complete after the restart", || async {
        let all = api.all_history(&bob, &chat).await?;
        Ok((all.len() >= 30).then_some(all))
    })
    .await?;
    let seqs: Vec<i64> = all.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=30).collect::<Vec<_>>(),
        "complete, in order, once"
    );
    let contents: Vec<&str> = all.iter().filter_map(|m| m["content"].as_str()).collect();
    assert_eq!(contents[29], "m 30");
    Ok(())
}

/// A proxy in front of dynalite that, while `throttle` is set, answers every `BatchWriteItem`
/// the way a throttled table does: nothing written, every item back as unprocessed. It counts
/// those answers, to show the sink backs off instead of spinning.
struct ThrottlingProxy {
    url: String,
    throttle: std::sync::Arc<std::sync::atomic::AtomicBool>,
    throttled: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ThrottlingProxy {
    async fn start(upstream: String) -> anyhow::Result<Self> {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let throttle = std::sync::Arc::new(AtomicBool::new(false));
        let throttled = std::sync::Arc::new(AtomicU64::new(0));
        let (flag, count) = (throttle.clone(), throttled.clone());
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (flag, count, client, upstream) = (
                    flag.clone(),
                    count.clone(),
                    client.clone(),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let _ = serve(socket, &flag, &count, &client, &upstream).await;
                });
            }
        });
        Ok(Self {
            url,
            throttle,
            throttled,
        })
    }
}

/// One keep-alive connection of the proxy: HTTP/1.1 requests with a Content-Length body.
async fn serve(
    socket: tokio::net::TcpStream,
    throttle: &std::sync::atomic::AtomicBool,
    throttled: &std::sync::atomic::AtomicU64,
    client: &reqwest::Client,
    upstream: &str,
) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut socket = BufReader::new(socket);
    loop {
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if socket.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            headers.push(line.trim_end().to_owned());
        }
        let header = |name: &str| {
            headers.iter().find_map(|h| {
                let (k, v) = h.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        socket.read_exact(&mut body).await?;
        let target = header("x-amz-target").unwrap_or_default();
        let (status, answer) = if throttle.load(Ordering::SeqCst)
            && target.ends_with("BatchWriteItem")
        {
            throttled.fetch_add(1, Ordering::SeqCst);
            let asked: Value = serde_json::from_slice(&body)?;
            let answer = json!({ "UnprocessedItems": asked["RequestItems"] });
            (200, serde_json::to_vec(&answer)?)
        } else {
            let mut forward = client.post(upstream).body(body);
            for h in &headers[1..] {
                if let Some((k, v)) = h.split_once(':') {
                    if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length")
                    {
                        forward = forward.header(k.trim(), v.trim());
                    }
                }
            }
            let reply = forward.send().await?;
            (reply.status().as_u16(), reply.bytes().await?.to_vec())
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        socket.get_mut().write_all(head.as_bytes()).await?;
        socket.get_mut().write_all(&answer).await?;
    }
}

/// The sink's lag on the log, from the node's metrics.
async fn sink_lag(app: &harmony_testkit::TestApp) -> anyhow::Result<Option<f64>> {
    let text = app.metrics().await?;
    Ok(text.lines().find_map(|l| {
        l.strip_prefix("harmony_consumer_lag{consumer=\"sink\"} ")?
            .parse()
            .ok()
    }))
}

#[tokio::test]
async fn a_throttled_table_makes_the_sink_lag_and_back_off_and_it_recovers() -> R {
    use std::sync::atomic::Ordering;
    let cluster = TestCluster::with_dynamodb().await?;
    let dynalite = cluster
        .dynamo
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no dynamo"))?
        .endpoint();
    let proxy = ThrottlingProxy::start(dynalite).await?;
    let api = harmony_testkit::TestApp::spawn_with(|config| {
        cluster.configure(config);
        config.server.roles = API.to_owned();
        config.history.dynamodb_endpoint = proxy.url.clone();
    })
    .await?;
    let gateway = cluster.node("gateway").await?;
    let (ann, bob) = (api.register("ann").await?, api.register("bob").await?);
    let chat = api.group(&ann, "g", &[&bob]).await?;
    api.send(&ann, &chat, "before").await?;
    eventually("the first message in history", || async {
        Ok((api.all_history(&bob, &chat).await?.len() == 1).then_some(()))
    })
    .await?;

    proxy.throttle.store(true, Ordering::SeqCst);
    let (mut ws, _) = gateway.ws(&bob.access).await?;
    for i in 2..=21 {
        api.send(&ann, &chat, &format!("throttled {i}")).await?;
    }
    let mut live = Vec::new();
    while live.last() != Some(&21) {
        live.push(
            ws.next_of("message").await?["message"]["seq"]
                .as_i64()
                .unwrap_or(-1),
        );
    }
    assert!(live.ends_with(&[20, 21]), "live delivery goes on: {live:?}");
    let lag = eventually("the sink's lag to show", || async {
        let lag = sink_lag(&api).await?;
        Ok(lag.filter(|lag| *lag >= 20.0))
    })
    .await?;
    let before = proxy.throttled.load(Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let during = proxy.throttled.load(Ordering::SeqCst) - before;
    assert!(
        before > 0 && during < 60,
        "the sink backs off instead of spinning: {during} throttled writes in 3 s (lag {lag})"
    );
    assert_eq!(
        api.all_history(&bob, &chat).await?.len(),
        1,
        "nothing stored while throttled"
    );

    proxy.throttle.store(false, Ordering::SeqCst);
    let all = eventually("the sink caught up", || async {
        let all = api.all_history(&bob, &chat).await?;
        Ok((all.len() >= 21).then_some(all))
    })
    .await?;
    let seqs: Vec<i64> = all.iter().filter_map(|m| m["seq"].as_i64()).collect();
    assert_eq!(
        seqs,
        (1..=21).collect::<Vec<_>>(),
        "nothing lost or doubled"
    );
    eventually("the lag back to nothing", || async {
        Ok((sink_lag(&api).await? == Some(0.0)).then_some(()))
    })
    .await?;
    ws.close().await;
    Ok(())
}
