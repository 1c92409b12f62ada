//! The demo's web app and its pushed status: assets and caching, the WebSocket feed, the
//! `stream:` step against the real demo, and the real-browser session in headless Chromium.

mod assets;
mod browser;
mod stream;
mod ws;
