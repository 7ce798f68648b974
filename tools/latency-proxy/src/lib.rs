//! A network round trip on loopback, for benchmarks: a TCP proxy that delivers each
//! chunk it reads a set delay after it arrived, in both directions, pipelined (a
//! chunk never waits for the one before it to be delivered, only behind it: the
//! order is kept, and a stream of requests pays the delay once, not once each).
//! With `delay` each way, every request-response costs `2 × delay` more, as a
//! deployed DynamoDB or Fintoc request does over the network. It counts the
//! exchanges it carries ([`Exchanges`]): how many requests a call really made.
//! Its delay is a [`Delay`] that can be changed while it runs (each chunk takes the
//! delay in force when it arrives), so a benchmark can alternate two settings on
//! one process and one upstream and compare them pair by pair.

pub mod alternation;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

/// How a chunk waits for its delivery time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// On tokio's timer alone: each wait is rounded up to its millisecond tick, so
    /// a 1 ms delay costs about 2 (fine for delays of tens of milliseconds, and
    /// virtual under a paused clock, for tests).
    Tokio,
    /// Tokio's timer to within 2 ms of the delivery time, then the thread sleeps
    /// the rest (tens of microseconds of precision on Linux). It blocks the
    /// runtime's thread: run the proxy on a runtime of its own
    /// ([`spawn_on_own_thread`]).
    Precise,
}

/// How many request-response exchanges a proxy carried, over all its connections,
/// and how long the upstream took to answer them: a chunk from the client that
/// follows an answer (or opens its connection) starts one, the first chunk of the
/// answer ends it. For HTTP/1.1 without pipelining, exactly the requests made.
#[derive(Debug, Clone, Default)]
pub struct Exchanges(Arc<ExchangeCounters>);

#[derive(Debug, Default)]
struct ExchangeCounters {
    count: AtomicU64,
    upstream_nanos: AtomicU64,
}

impl Exchanges {
    /// The exchanges so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// The time the upstream took to answer them, summed: from each request's
    /// delivery to the upstream to its answer's first chunk arriving back — the
    /// upstream's own time, without the delay added either way.
    pub fn upstream_time(&self) -> Duration {
        Duration::from_nanos(self.0.upstream_nanos.load(Ordering::Relaxed))
    }
}

/// The delay a proxy adds each way, shared with whoever may change it: a chunk
/// is delivered the delay in force when it arrived after its arrival.
#[derive(Debug, Clone, Default)]
pub struct Delay(Arc<AtomicU64>);

impl Delay {
    /// A delay of `each_way`.
    pub fn new(each_way: Duration) -> Self {
        let delay = Self::default();
        delay.set(each_way);
        delay
    }

    /// From now on, chunks wait `each_way`.
    pub fn set(&self, each_way: Duration) {
        let nanos = u64::try_from(each_way.as_nanos()).unwrap_or(u64::MAX);
        self.0.store(nanos, Ordering::Relaxed);
    }

    /// The delay in force.
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// Proxies every connection `listener` accepts to `upstream`, each direction
/// delayed by `delay`. Runs until the listener fails.
pub async fn serve(listener: TcpListener, upstream: SocketAddr, delay: Duration) {
    serve_with(
        listener,
        upstream,
        Delay::new(delay),
        Timer::Tokio,
        Exchanges::default(),
    )
    .await
}

/// [`serve`] with a [`Delay`] that may change, waiting with `timer`, counting
/// into `exchanges`.
pub async fn serve_with(
    listener: TcpListener,
    upstream: SocketAddr,
    delay: Delay,
    timer: Timer,
    exchanges: Exchanges,
) {
    while let Ok((client, _)) = listener.accept().await {
        let (exchanges, delay) = (exchanges.clone(), delay.clone());
        tokio::spawn(async move {
            if let Ok(server) = TcpStream::connect(upstream).await {
                proxy(client, server, delay, timer, exchanges).await;
            }
        });
    }
}

/// A precise proxy ([`Timer::Precise`]) on a thread and runtime of its own, so its
/// waits block nothing else; answers the address it listens on (loopback, any
/// free port) and its exchange counter.
pub fn spawn_on_own_thread(
    upstream: SocketAddr,
    delay: Delay,
) -> std::io::Result<(SocketAddr, Exchanges)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let exchanges = Exchanges::default();
    std::thread::Builder::new()
        .name(format!("latency-proxy-{}", addr.port()))
        .spawn({
            let exchanges = exchanges.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("the proxy's listener");
                    serve_with(listener, upstream, delay, Timer::Precise, exchanges).await
                });
            }
        })?;
    Ok((addr, exchanges))
}

/// One connection, both ways, until either side closes.
async fn proxy(
    client: TcpStream,
    server: TcpStream,
    delay: Delay,
    timer: Timer,
    exchanges: Exchanges,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Set by each answer, taken by the client's next chunk: one exchange each,
    // timed from the request's delivery to the answer's arrival.
    let answered = Arc::new(AtomicBool::new(true));
    let delivered_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let asked = {
        let (answered, delivered_at, exchanges) =
            (answered.clone(), delivered_at.clone(), exchanges.clone());
        move |_arrived: Instant, due: Instant| {
            if answered.swap(false, Ordering::Relaxed) {
                exchanges.0.count.fetch_add(1, Ordering::Relaxed);
                *delivered_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(due);
            }
        }
    };
    let answer = move |arrived: Instant, _due: Instant| {
        if !answered.swap(true, Ordering::Relaxed) {
            if let Some(delivered) = delivered_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                let took = arrived.saturating_duration_since(delivered);
                let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                exchanges
                    .0
                    .upstream_nanos
                    .fetch_add(nanos, Ordering::Relaxed);
            }
        }
    };
    tokio::join!(
        pipe(client_read, server_write, delay.clone(), timer, asked),
        pipe(server_read, client_write, delay, timer, answer)
    );
}

/// Reads chunks as they come and hands each, with its due time, to a writer that
/// delivers it then: reading never waits for delivery.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Delay,
    timer: Timer,
    on_chunk: impl Fn(Instant, Instant),
) {
    let (chunks, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let arrived = Instant::now();
                    let due = arrived + delay.get();
                    on_chunk(arrived, due);
                    if chunks.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = due.recv().await {
            wait_until(at, timer).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// An echo server on loopback (every byte sent back as it comes): what a proxy's
/// real round trip is measured against. Answers its address.
pub async fn echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Waits until `at` with `timer`.
async fn wait_until(at: Instant, timer: Timer) {
    match timer {
        Timer::Tokio => sleep_until(at).await,
        Timer::Precise => {
            if let Some(near) = at.checked_sub(Duration::from_millis(2)) {
                if near > Instant::now() {
                    sleep_until(near).await;
                }
            }
            let left = at.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                std::thread::sleep(left);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The clock is tokio's, paused: it moves only when every task waits, so the
    // delay is observed on it exactly, and the test waits for no real time.
    #[tokio::test(start_paused = true)]
    async fn bytes_pass_unchanged_in_order_each_way_a_delay_later() {
        let upstream = echo_server().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let delay = Duration::from_millis(2);
        tokio::spawn(serve(listener, upstream, delay));
        let mut client = TcpStream::connect(proxy_addr).await.unwrap();
        for round in 0..3u8 {
            let message: Vec<u8> = (0..200).map(|i: u8| i.wrapping_add(round)).collect();
            let started = Instant::now();
            client.write_all(&message).await.unwrap();
            let mut echoed = vec![0u8; message.len()];
            client.read_exact(&mut echoed).await.unwrap();
            assert_eq!(echoed, message, "round {round}");
            assert!(
                started.elapsed() >= 2 * delay,
                "a round trip pays the delay both ways: {:?}",
                started.elapsed()
            );
        }
    }

    // A changed delay holds from the next chunk on: one connection, three settings.
    #[tokio::test(start_paused = true)]
    async fn a_changed_delay_holds_from_the_next_exchange_on() {
        let upstream = echo_server().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let delay = Delay::new(Duration::from_millis(5));
        tokio::spawn(serve_with(
            listener,
            upstream,
            delay.clone(),
            Timer::Tokio,
            Exchanges::default(),
        ));
        let mut client = TcpStream::connect(proxy_addr).await.unwrap();
        for each_way in [5u64, 0, 20] {
            delay.set(Duration::from_millis(each_way));
            let started = Instant::now();
            client.write_all(b"ping").await.unwrap();
            let mut echoed = [0u8; 4];
            client.read_exact(&mut echoed).await.unwrap();
            let took = started.elapsed();
            let round_trip = Duration::from_millis(2 * each_way);
            // The paused clock is exact but for the timer's 1 ms tick per wait.
            assert!(
                took >= round_trip && took <= round_trip + Duration::from_millis(3),
                "{each_way} ms each way took {took:?}"
            );
        }
    }

    // Requests in several chunks are one exchange each; every answer ends one,
    // and the upstream's time is counted without the proxy's delay.
    #[tokio::test(start_paused = true)]
    async fn each_request_and_its_answer_count_once_however_they_are_chunked() {
        // An upstream answering each 8-byte request whole, 3 ms after it is whole,
        // as an HTTP server does.
        let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = server.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 8];
                    while socket.read_exact(&mut request).await.is_ok() {
                        tokio::time::sleep(Duration::from_millis(3)).await;
                        if socket.write_all(&request).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = listener.local_addr().unwrap();
        let exchanges = Exchanges::default();
        tokio::spawn(serve_with(
            listener,
            upstream,
            Delay::new(Duration::from_millis(4)),
            Timer::Tokio,
            exchanges.clone(),
        ));
        for connection in 0..2 {
            let mut client = TcpStream::connect(proxy_addr).await.unwrap();
            for _ in 0..3 {
                // Two writes a delay apart reach the proxy as two chunks.
                client.write_all(b"head").await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                client.write_all(b"body").await.unwrap();
                let mut echoed = [0u8; 8];
                client.read_exact(&mut echoed).await.unwrap();
                assert_eq!(&echoed, b"headbody");
            }
            assert_eq!(exchanges.count(), 3 * (connection + 1));
        }
        // Each took the upstream 8 ms from its first chunk's delivery: the 5 ms the
        // client waited between its two chunks, then 3 ms once whole (and up to a
        // timer tick); the 4 ms each way the proxy added are not the upstream's.
        let each = exchanges.upstream_time() / 6;
        assert!(
            each >= Duration::from_millis(8) && each <= Duration::from_millis(10),
            "{each:?} per exchange"
        );
    }
}
