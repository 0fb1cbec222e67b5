//! A JWKS key server on loopback whose document and behaviour a test changes, and which
//! counts the requests it gets.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::Value;

/// Where the document is served, as a hosted identity provider serves it.
const JWKS_PATH: &str = "/.well-known/jwks.json";

/// What the server does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers 200 with the published document.
    Serve,
    /// Answers with this status and no document.
    Fail(u16),
    /// Answers only after a minute: longer than any fetch timeout.
    Hang,
}

#[derive(Debug)]
struct State {
    document: Mutex<Value>,
    behaviour: Mutex<Behaviour>,
    hits: AtomicUsize,
}

/// A running key server.
#[derive(Debug)]
pub struct KeyServer {
    address: SocketAddr,
    state: Arc<State>,
    handle: ServerHandle,
}

impl KeyServer {
    /// Starts serving `document` on a free loopback port.
    pub async fn start(document: Value) -> Self {
        let state = Arc::new(State {
            document: Mutex::new(document),
            behaviour: Mutex::new(Behaviour::Serve),
            hits: AtomicUsize::new(0),
        });
        let data = web::Data::from(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(JWKS_PATH, web::get().to(serve))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)
        .expect("the key server listens")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            address,
            state,
            handle,
        }
    }

    /// The JWKS URL to configure the app with.
    pub fn url(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.address)
    }

    /// Serves `document` from now on.
    pub fn publish(&self, document: Value) {
        *self.state.document.lock().unwrap() = document;
    }

    pub fn behave(&self, behaviour: Behaviour) {
        *self.state.behaviour.lock().unwrap() = behaviour;
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Stops listening: from now on connections are refused.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

async fn serve(state: web::Data<State>) -> HttpResponse {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = *state.behaviour.lock().unwrap();
    match behaviour {
        Behaviour::Serve => {}
        Behaviour::Fail(status) => {
            let status = StatusCode::from_u16(status).expect("a status code");
            return HttpResponse::build(status).finish();
        }
        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
    }
    let document = state.document.lock().unwrap().clone();
    HttpResponse::Ok().json(document)
}
