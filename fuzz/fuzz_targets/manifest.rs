//! Fuzz target `manifest`: see `writepath::robustness::manifest` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    writepath::robustness::manifest(data);
});
