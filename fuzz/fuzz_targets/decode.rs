//! Fuzz target `decode`: see `writepath::robustness::decode` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    writepath::robustness::decode(data);
});
