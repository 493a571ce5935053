//! The SIP endpoint: listeners, the rsipstack endpoint and dialog layer, the
//! rate limiter, and the dispatcher that routes every incoming transaction.

use crate::auth::{AuthOutcome, DigestAuthenticator};
use crate::call::CallInfo;
use crate::config::{ListenerConfig, RouteConfig, SecurityConfig, SipConfig, TransportKind, TrunkConfig, UserConfig};
use crate::dialog::{CallDialog, DialogParts, Role};
use crate::inbound::InboundCall;
use crate::routing::{CallCounter, CallPermit, LimitExceeded, Route, Router};
use crate::sdes::{SrtpLocal, SrtpPolicy};
use crate::sdp::{self, AudioCodec, SdpError};
use crate::security::RateLimiter;
use crate::stream_guard::{self, ConnectionTable, StreamAcceptor, StreamKind, StreamLimits, StreamStats};
use crate::udp_guard::{GuardedUdpSocket, StreamRateLimit};
use crate::SipError;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::tls::{TlsConfig, TlsListenerConnection};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

/// Methods voxline answers (sent in `Allow`).
pub const ALLOWED_METHODS: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// What a server (or a client-only endpoint) is built from.
#[derive(Debug, Clone)]
pub struct SipEndpointOptions {
    /// Listeners, codecs, user agent.
    pub sip: SipConfig,
    /// Trunks.
    pub trunks: Vec<TrunkConfig>,
    /// Inbound routes.
    pub routes: Vec<RouteConfig>,
    /// Phones allowed to call in with digest authentication.
    pub users: Vec<UserConfig>,
    /// Rate limits.
    pub security: SecurityConfig,
    /// Whether new INVITEs are routed to the handler (false for `voxline call`).
    pub accept_inbound: bool,
}

/// Takes calls that passed authentication and routing.
#[async_trait::async_trait]
pub trait CallHandler: Send + Sync + 'static {
    /// Owns `call` until it ends.
    async fn handle(&self, call: InboundCall, route: Arc<Route>);

    /// Told about a routed or authenticated call that was refused before a
    /// dialog existed (404, 488, 503...), for the call record.
    async fn rejected(&self, info: CallInfo, route: Option<Arc<Route>>, status: u16, reason: String) {
        let _ = (info, route, status, reason);
    }
}

struct Shared {
    dialog_layer: Arc<DialogLayer>,
    router: Arc<Router>,
    auth: DigestAuthenticator,
    /// The per-source limiter, to ban a source that keeps failing authentication.
    limiter: Arc<RateLimiter>,
    codecs: Vec<AudioCodec>,
    srtp: SrtpPolicy,
    handler: Option<Arc<dyn CallHandler>>,
    /// The node's calls, inbound and outbound (`[sip] max_calls`).
    node_calls: Arc<CallCounter>,
    /// Each phone user's calls (`[[user]] max_calls`).
    user_calls: HashMap<String, Arc<CallCounter>>,
    /// Set when the node stops: new calls get 503.
    draining: Arc<std::sync::atomic::AtomicBool>,
}

/// A running SIP endpoint.
pub struct SipEndpoint {
    endpoint: rsipstack::transaction::Endpoint,
    dialog_layer: Arc<DialogLayer>,
    router: Arc<Router>,
    codecs: Vec<AudioCodec>,
    srtp: SrtpPolicy,
    ring_timeout: Duration,
    pub(crate) node_calls: Arc<CallCounter>,
    draining: Arc<std::sync::atomic::AtomicBool>,
    stream_table: Arc<ConnectionTable>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for SipEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipEndpoint").field("addrs", &self.addrs()).finish()
    }
}

/// Parses `host[:port]` (a name or an IP, IPv6 in brackets).
pub fn parse_host_port(s: &str) -> Result<rsipstack::sip::HostWithPort, String> {
    if s.is_empty() || s.contains(char::is_whitespace) || s.contains("://") {
        return Err(format!("{s:?} is not host[:port]"));
    }
    rsipstack::sip::HostWithPort::try_from(s).map_err(|e| format!("{s:?} is not host[:port]: {e}"))
}

fn load_tls(l: &ListenerConfig) -> Result<(TlsConfig, tokio_rustls::TlsAcceptor), SipError> {
    let read = |p: &Option<std::path::PathBuf>| -> Result<Vec<u8>, SipError> {
        let p = p.as_ref().ok_or_else(|| SipError::Tls {
            path: "(none)".into(),
            reason: "tls listener needs cert and key".into(),
        })?;
        let data = std::fs::read(p).map_err(|e| SipError::Tls {
            path: p.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(data)
    };
    let cert = read(&l.cert)?;
    let key = read(&l.key)?;
    // Check the PEM contents now, so a bad file is reported at start-up.
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(SipError::Tls {
            path: l.cert.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            reason: "no PEM certificate found".into(),
        });
    }
    if !matches!(rustls_pemfile::private_key(&mut key.as_slice()), Ok(Some(_))) {
        return Err(SipError::Tls {
            path: l.key.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            reason: "no PEM private key found".into(),
        });
    }
    let acceptor = tls_acceptor(certs, &key).map_err(|reason| SipError::Tls {
        path: l.cert.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        reason,
    })?;
    let config = TlsConfig {
        cert: Some(cert),
        key: Some(key),
        ..Default::default()
    };
    Ok((config, acceptor))
}

/// The TLS server side of a listener: its certificate chain and key.
fn tls_acceptor(
    certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    key_pem: &[u8],
) -> Result<tokio_rustls::TlsAcceptor, String> {
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no PEM private key found".to_string())?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl SipEndpoint {
    /// Binds the listeners and starts serving. Inbound calls go to `handler`.
    pub async fn start(
        opts: SipEndpointOptions,
        handler: Option<Arc<dyn CallHandler>>,
    ) -> Result<SipEndpoint, SipError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cancel = CancellationToken::new();
        let transport_layer = TransportLayer::new(cancel.child_token());
        let mut exempt = opts.security.exempt.clone();
        for t in &opts.trunks {
            exempt.extend(t.allow.iter().cloned());
        }
        let exempt_nets = exempt.clone();
        let limiter = Arc::new(RateLimiter::new(
            opts.security.rate_limit_requests,
            Duration::from_millis(opts.security.rate_limit_window_ms),
            Duration::from_secs(opts.security.ban_seconds),
            exempt,
        ));
        let ban_secs = opts.security.ban_seconds;
        let whitelist_limiter = limiter.clone();
        // New connections and datagrams from a banned source are refused here;
        // requests are counted where they are seen (UDP socket, stream inspector).
        transport_layer.set_whitelist(move |ip: IpAddr| {
            let limiter = whitelist_limiter.clone();
            async move { !limiter.is_banned(ip, std::time::Instant::now()) }
        });
        // Stream listeners are bound here and served by voxline's own accept
        // loops (stream_guard); the stack learns of them once it has started
        // its own listeners (see below), so it never binds them itself.
        let mut stream_listeners = Vec::new();
        for l in &opts.sip.listeners {
            let listen_err = |reason: String| SipError::Listen {
                transport: format!("{:?}", l.transport).to_lowercase(),
                addr: l.bind.to_string(),
                reason,
            };
            match l.transport {
                TransportKind::Udp => {
                    let socket = GuardedUdpSocket::bind(l.bind, limiter.clone(), ban_secs)
                        .map_err(|e| listen_err(e.to_string()))?;
                    let conn = UdpConnection::from_socket(Arc::new(socket), l.external, Some(cancel.child_token()))
                        .await
                        .map_err(|e| listen_err(e.to_string()))?;
                    transport_layer.add_transport(conn.into());
                }
                TransportKind::Tcp => {
                    let listener = stream_guard::bind_listener(l.bind).map_err(|e| listen_err(e.to_string()))?;
                    let entry = TcpListenerConnection::new(l.bind, l.external)
                        .await
                        .map_err(|e| listen_err(e.to_string()))?;
                    stream_listeners.push((listener, SipConnection::from(entry), StreamKind::Tcp));
                }
                TransportKind::Tls => {
                    let (tls, acceptor) = load_tls(l)?;
                    let listener = stream_guard::bind_listener(l.bind).map_err(|e| listen_err(e.to_string()))?;
                    let entry = TlsListenerConnection::new(l.bind, l.external, tls)
                        .await
                        .map_err(|e| listen_err(e.to_string()))?;
                    stream_listeners.push((listener, SipConnection::from(entry), StreamKind::Tls(acceptor)));
                }
            }
        }
        transport_layer.set_stream_idle_timeout(Duration::from_secs(opts.security.connection_idle_secs));

        let endpoint = EndpointBuilder::new()
            .with_user_agent(&opts.sip.user_agent)
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.clone())
            .with_transport_inspector(Box::new(StreamRateLimit::new(limiter.clone(), ban_secs)))
            .with_allows(vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Info,
                Method::Update,
            ])
            .build();
        let incoming = endpoint.incoming_transactions()?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let router = Arc::new(Router::new(&opts.trunks, &opts.routes));
        let codecs: Vec<AudioCodec> = opts
            .sip
            .codecs
            .iter()
            .filter_map(|c| AudioCodec::from_name(c))
            .collect();

        let inner = endpoint.inner.clone();
        let mut serve = Box::pin(async move {
            if let Err(e) = inner.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        // The first poll of `serve` starts the stack's listeners from the
        // list it holds then (UDP only); the stream listeners are added to
        // the list after it, for their addresses (Via, Contact), and served
        // by the accept loops below.
        std::future::poll_fn(|cx| {
            let _ = serve.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        tokio::spawn(serve);
        let stream_table = ConnectionTable::new(
            StreamLimits {
                per_source: opts.security.max_connections_per_source,
                total: opts.security.max_connections,
                setup: Duration::from_millis(opts.security.connection_setup_ms),
            },
            exempt_nets.clone(),
        );
        let acceptor = StreamAcceptor {
            stack: endpoint.inner.clone(),
            limiter: limiter.clone(),
            table: stream_table.clone(),
            ban_seconds: ban_secs,
            cancel: cancel.child_token(),
        };
        for (listener, entry, kind) in stream_listeners {
            let local = entry.get_addr().clone();
            endpoint.inner.transport_layer.add_transport(entry);
            acceptor.spawn(listener, local, kind);
        }

        let node_calls = CallCounter::new(opts.sip.max_calls);
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = Arc::new(Shared {
            dialog_layer: dialog_layer.clone(),
            router: router.clone(),
            auth: DigestAuthenticator::new(&opts.security.realm, &opts.users),
            limiter: limiter.clone(),
            codecs: codecs.clone(),
            srtp: opts.sip.srtp,
            handler: if opts.accept_inbound { handler } else { None },
            node_calls: node_calls.clone(),
            draining: draining.clone(),
            user_calls: opts
                .users
                .iter()
                .map(|u| (u.username.clone(), CallCounter::new(u.max_calls)))
                .collect(),
        });
        tokio::spawn(dispatch(incoming, shared, cancel.clone()));

        let ep = SipEndpoint {
            endpoint,
            dialog_layer,
            router,
            codecs,
            srtp: opts.sip.srtp,
            ring_timeout: Duration::from_secs(opts.sip.ring_timeout_secs),
            node_calls,
            draining,
            stream_table,
            cancel,
        };
        for a in ep.addrs() {
            info!(addr = %a, "SIP listening");
        }
        Ok(ep)
    }

    /// The addresses voxline listens on.
    pub fn addrs(&self) -> Vec<SipAddr> {
        self.endpoint.get_addrs()
    }

    /// The first listener's address as a socket address.
    pub fn first_socket_addr(&self) -> Option<SocketAddr> {
        self.addrs().first().and_then(|a| a.get_socketaddr().ok())
    }

    /// The dialog layer (for outbound calls and registrations).
    pub fn dialog_layer(&self) -> Arc<DialogLayer> {
        self.dialog_layer.clone()
    }

    /// The endpoint core.
    pub fn inner(&self) -> rsipstack::transaction::endpoint::EndpointInnerRef {
        self.endpoint.inner.clone()
    }

    /// Trunks and routes.
    pub fn router(&self) -> Arc<Router> {
        self.router.clone()
    }

    /// Codecs in preference order.
    pub fn codecs(&self) -> &[AudioCodec] {
        &self.codecs
    }

    /// How calls take encrypted media (`[sip] srtp`).
    pub fn srtp_policy(&self) -> SrtpPolicy {
        self.srtp
    }

    /// How long an outbound INVITE may ring.
    pub fn ring_timeout(&self) -> Duration {
        self.ring_timeout
    }

    /// A token cancelled when the endpoint shuts down.
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The node is stopping: from now on a new INVITE gets 503 with
    /// `Retry-After` (a proxy or trunk tries another node) while the calls
    /// up finish; other requests are still answered.
    pub fn drain(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether [`drain`](Self::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Calls up on this node now (inbound and outbound).
    pub fn active_calls(&self) -> u32 {
        self.node_calls.active()
    }

    /// TCP/TLS connections held and refused so far.
    pub fn stream_stats(&self) -> StreamStats {
        self.stream_table.stats()
    }

    /// Stops listening and ends all transactions.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

/// The source address of a request (where it came from on the wire).
pub(crate) fn source_of(tx: &Transaction) -> SocketAddr {
    tx.connection
        .as_ref()
        .and_then(|c| c.get_remote_addr())
        .and_then(|a| a.get_socketaddr().ok())
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
}

async fn dispatch(mut incoming: TransactionReceiver, shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let mut tx = tokio::select! {
            _ = cancel.cancelled() => return,
            tx = incoming.recv() => match tx {
                Some(tx) => tx,
                None => return,
            },
        };
        let has_to_tag = tx
            .original
            .to_header()
            .ok()
            .and_then(|t| t.tag().ok().flatten())
            .is_some();
        if has_to_tag {
            match shared.dialog_layer.match_dialog(&tx) {
                Some(mut d) => {
                    tokio::spawn(async move {
                        if let Err(e) = d.handle(&mut tx).await {
                            debug!(error = %e, "in-dialog request failed");
                        }
                    });
                }
                None if tx.original.method == Method::Ack => {}
                None => {
                    tokio::spawn(async move {
                        tx.reply(StatusCode::CallTransactionDoesNotExist).await.ok();
                    });
                }
            }
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            match tx.original.method {
                Method::Options => {
                    let headers = vec![
                        Header::Allow(ALLOWED_METHODS.into()),
                        Header::Accept("application/sdp, application/dtmf-relay, application/dtmf".into()),
                        Header::Supported("replaces, timer".into()),
                    ];
                    tx.reply_with(StatusCode::OK, headers, None).await.ok();
                }
                Method::Invite => match shared.handler.clone() {
                    Some(handler) => new_invite(shared, handler, tx).await,
                    None => {
                        tx.reply(StatusCode::Forbidden).await.ok();
                    }
                },
                Method::Ack => {}
                Method::Bye | Method::Info | Method::Update | Method::PRack => {
                    tx.reply(StatusCode::CallTransactionDoesNotExist).await.ok();
                }
                _ => {
                    tx.reply_with(
                        StatusCode::MethodNotAllowed,
                        vec![Header::Allow(ALLOWED_METHODS.into())],
                        None,
                    )
                    .await
                    .ok();
                }
            }
        });
    }
}

/// Our Contact for a dialog created over a stream transport: the address of
/// that listener with `transport=tcp|tls` (sips for TLS), so in-dialog
/// requests come back over the same transport. UDP uses the stack's default.
fn contact_for(
    conn: &rsipstack::transport::SipConnection,
    request_uri: &rsipstack::sip::Uri,
) -> Option<rsipstack::sip::Uri> {
    use rsipstack::sip::{Param, Scheme, Transport};
    let addr = conn.get_addr();
    let transport = addr.r#type?;
    // `sips:` only when the caller asked for it (RFC 5630 4.1): a `sip:`
    // request that came over TLS gets `sip:…;transport=tls`, which every
    // phone can send its ACK and BYE to.
    let scheme = match transport {
        Transport::Udp => return None,
        Transport::Tls if request_uri.scheme == Some(Scheme::Sips) => Scheme::Sips,
        _ => Scheme::Sip,
    };
    Some(rsipstack::sip::Uri {
        scheme: Some(scheme),
        auth: Some(rsipstack::sip::Auth {
            user: "voxline".into(),
            password: None,
        }),
        host_with_port: addr.addr.clone(),
        params: vec![Param::Transport(transport)],
        ..Default::default()
    })
}

fn call_info(tx: &Transaction, trunk: &str) -> CallInfo {
    let req = &tx.original;
    let call_id = req.call_id_header().map(|c| c.value().to_string()).unwrap_or_default();
    let from = req
        .from_header()
        .ok()
        .and_then(|f| f.uri().ok())
        .map(|u| u.to_string())
        .unwrap_or_default();
    let to_uri = req.to_header().ok().and_then(|t| t.uri().ok());
    let dialled = req
        .uri
        .auth
        .as_ref()
        .map(|a| a.user.clone())
        .or_else(|| to_uri.as_ref().and_then(|u| u.auth.as_ref().map(|a| a.user.clone())))
        .unwrap_or_default();
    CallInfo {
        call_id,
        from,
        to: to_uri.map(|u| u.to_string()).unwrap_or_default(),
        dialled,
        remote: source_of(tx),
        trunk: trunk.to_string(),
    }
}

/// Takes a new call's slots: the node's, then its phone user's or trunk's.
/// The error is the call record's end reason.
fn admit(
    shared: &Shared,
    trunk: Option<&Arc<crate::routing::Trunk>>,
    user: Option<&str>,
) -> Result<CallPermit, &'static str> {
    if shared.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err("node_draining");
    }
    let mut permit = shared.node_calls.take().ok_or("node_max_calls")?;
    if let Some(counter) = user.and_then(|u| shared.user_calls.get(u)) {
        permit = permit.with(counter.take().ok_or("user_max_calls")?);
    }
    if let Some(t) = trunk {
        permit = permit.with(t.admit().map_err(|l| match l {
            LimitExceeded::Concurrent => "trunk_max_calls",
            LimitExceeded::Rate => "trunk_max_cps",
        })?);
    }
    Ok(permit)
}

async fn new_invite(shared: Arc<Shared>, handler: Arc<dyn CallHandler>, mut tx: Transaction) {
    let source = source_of(&tx);
    let call_id = tx
        .original
        .call_id_header()
        .map(|c| c.value().to_string())
        .unwrap_or_default();
    let span = info_span!("call", call_id = %call_id, source = %source);
    async move {
        // 1. Who is calling: a trusted trunk by source address, or an authenticated phone.
        let trunk = shared.router.trunk_for_source(source.ip());
        let mut user = None;
        let trunk_name = match &trunk {
            Some(t) => t.config.name.clone(),
            None if shared.auth.has_users() => match shared.auth.verify(&tx.original, source.ip()) {
                AuthOutcome::Authenticated(name) => {
                    info!(user = %name, "phone authenticated");
                    user = Some(name);
                    "users".to_string()
                }
                AuthOutcome::Challenge { stale } => {
                    tx.reply_with(StatusCode::Unauthorized, vec![shared.auth.challenge(stale)], None)
                        .await
                        .ok();
                    return;
                }
                AuthOutcome::Forbidden => {
                    warn!("INVITE with bad credentials refused");
                    tx.reply(StatusCode::Forbidden).await.ok();
                    return;
                }
                AuthOutcome::BanSource => {
                    let banned = shared.limiter.ban(source.ip(), std::time::Instant::now());
                    warn!(
                        banned,
                        "INVITE with bad credentials refused; too many failures from this source"
                    );
                    tx.reply(StatusCode::Forbidden).await.ok();
                    return;
                }
            },
            None => {
                warn!("INVITE from an untrusted source refused");
                tx.reply(StatusCode::Forbidden).await.ok();
                return;
            }
        };
        let info = call_info(&tx, &trunk_name);

        // 2. Where it goes.
        let Some(route) = shared.router.route(&trunk_name, &info.dialled) else {
            info!(dialled = %info.dialled, trunk = %trunk_name, "no route: 404");
            tx.reply(StatusCode::NotFound).await.ok();
            handler.rejected(info, None, 404, "no_route".into()).await;
            return;
        };

        // 3. Limits: the node's, the phone user's, the trunk's; 503 before it rings.
        let permit = match admit(&shared, trunk.as_ref(), user.as_deref()) {
            Ok(p) => p,
            Err(why) => {
                warn!(trunk = %trunk_name, user = user.as_deref().unwrap_or(""), limit = why, "call limit reached: 503");
                tx.reply_with(
                    StatusCode::ServiceUnavailable,
                    vec![Header::RetryAfter("1".into())],
                    None,
                )
                .await
                .ok();
                handler.rejected(info, Some(route), 503, why.into()).await;
                return;
            }
        };

        // 4. The offer, when there is one.
        let body = tx.original.body.clone();
        let offer = if body.iter().all(|b| b.is_ascii_whitespace()) {
            None
        } else {
            let ct = crate::call::content_type(&tx.original).to_ascii_lowercase();
            if !ct.starts_with("application/sdp") {
                tx.reply_with(
                    StatusCode::UnsupportedMediaType,
                    vec![Header::Accept("application/sdp".into())],
                    None,
                )
                .await
                .ok();
                handler
                    .rejected(info, Some(route), 415, "unsupported_body".into())
                    .await;
                return;
            }
            let check = SrtpLocal::new(shared.srtp);
            match sdp::parse(&body).and_then(|o| o.negotiate(&shared.codecs, None, &check).map(|_| o)) {
                Ok(o) => Some(o),
                Err(SdpError::Malformed(why)) => {
                    info!(reason = %why, "bad SDP: 400");
                    tx.reply(StatusCode::BadRequest).await.ok();
                    handler.rejected(info, Some(route), 400, "bad_sdp".into()).await;
                    return;
                }
                Err(e) => {
                    let why = e.detail();
                    info!(reason = %why, "488");
                    tx.reply_with(
                        StatusCode::NotAcceptableHere,
                        vec![Header::Warning(format!("304 voxline \"{why}\"").into())],
                        None,
                    )
                    .await
                    .ok();
                    let reason = match e {
                        SdpError::Encryption(_) => "srtp_not_acceptable",
                        _ => "no_common_codec",
                    };
                    handler.rejected(info, Some(route), 488, reason.into()).await;
                    return;
                }
            }
        };

        // 5. The dialog: rsipstack runs the INVITE server transaction in its own task.
        let (state_tx, state_rx) = shared.dialog_layer.new_dialog_state_channel();
        let contact = tx.connection.as_ref().and_then(|c| contact_for(c, &tx.original.uri));
        let dialog = match shared
            .dialog_layer
            .get_or_create_server_invite(&tx, state_tx, None, contact)
        {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, "cannot create dialog");
                tx.reply(StatusCode::ServerInternalError).await.ok();
                return;
            }
        };
        let mut d = dialog.clone();
        tokio::spawn(
            async move {
                if let Err(e) = d.handle(&mut tx).await {
                    debug!(error = %e, "INVITE transaction ended with an error");
                }
            }
            .in_current_span(),
        );
        info!(route = %route.config.name, handler = %route.config.handler, dialled = %info.dialled, "call routed");
        let local_uri = info.to.clone();
        let dialog = CallDialog::new(DialogParts {
            role: Role::Inbound,
            local_uri,
            invite: dialog,
            states: state_rx,
            dialog_layer: shared.dialog_layer.clone(),
            codecs: shared.codecs.clone(),
            srtp: shared.srtp,
            permit: Some(permit),
        });
        let call = InboundCall::new(info, offer, dialog);
        handler.handle(call, route).await;
    }
    .instrument(span)
    .await
}
