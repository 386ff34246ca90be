//! podid-agent
#![forbid(unsafe_code)]
