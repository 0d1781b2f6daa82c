//! The library example (`examples/store_fetch.rs`) runs: it starts four
//! nodes in this process, stores a file, fetches it and checks it.

#[path = "../examples/store_fetch.rs"]
#[allow(dead_code)]
mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_fetch_example_runs() {
    example::run().await.unwrap();
}
