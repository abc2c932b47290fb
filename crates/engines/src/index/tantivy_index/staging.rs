//! Handing documents to tantivy's indexing threads.
//!
//! `IndexWriter::add_document` sends every document through tantivy's bounded
//! channel of 10,000 operations. Once indexing falls behind, that channel is full and
//! every send waits for one free slot: on 2 cores the sender spun and yielded in a
//! tenth of the server's tokio-thread samples, time taken from the indexing thread
//! (BENCHMARKS.md). Here documents go in runs of [`DOCS_PER_RUN`] instead: one channel
//! operation per run, and each run goes to whichever indexing thread is free, so
//! several threads share one write.
//!
//! A run never waits, so the channel no longer holds writes back. What is staged
//! stays bounded by the commit policy instead: LogHub commits every interval or past
//! `max_uncommitted_records`, and a commit returns only when everything staged is
//! indexed.

use tantivy::indexer::UserOperation;
use tantivy::{IndexWriter, TantivyDocument, Term};

/// Documents per run: small enough that the indexing threads start on a write while
/// the rest of it is being built, large enough that channel operations are rare.
const DOCS_PER_RUN: usize = 1_000;

/// Stages `deletes`, then `documents`. The deletes get the lower opstamps, so they
/// apply to documents staged before this call only, never to these.
pub(crate) fn stage(
    writer: &IndexWriter,
    deletes: Vec<Term>,
    documents: impl Iterator<Item = TantivyDocument>,
) -> tantivy::Result<()> {
    if !deletes.is_empty() {
        writer.run(deletes.into_iter().map(UserOperation::Delete))?;
    }
    let mut run = Vec::with_capacity(DOCS_PER_RUN);
    for document in documents {
        run.push(UserOperation::Add(document));
        if run.len() == DOCS_PER_RUN {
            writer.run(std::mem::replace(
                &mut run,
                Vec::with_capacity(DOCS_PER_RUN),
            ))?;
        }
    }
    if !run.is_empty() {
        writer.run(run)?;
    }
    Ok(())
}
