//! Receiving a pipeline's data: what an upload, `vetter demo` and
//! `vetter check --repair` share. For now, publishing files into the media
//! folder in step with the rows (`publish`).

pub mod publish;
