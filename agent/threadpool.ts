// Imported first by the agent's entry point: libuv reads this once, when its pool first starts.
// Every pread/pwrite/fdatasync of the data path runs on that pool, and four threads (the default)
// cannot keep a queue of 32 NBD requests busy; each thread costs only an idle stack.
process.env.UV_THREADPOOL_SIZE ??= "32";
