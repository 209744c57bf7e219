// SPDX-License-Identifier: GPL-2.0
//! Fuzzes the sysfs statistics text codec (`FsyncReport::parse`, which
//! `ferrofs stats` runs on whatever file it is pointed at): any input is
//! refused or parsed without a panic, and a parsed report formats back to
//! a text that parses to the same report.
#![no_main]

use ferrofs_core::fsync_stats::FsyncReport;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = FsyncReport::parse(text) {
        let mut again = String::new();
        r.format(&mut again).expect("format");
        assert_eq!(FsyncReport::parse(&again), Ok(r), "a parsed report must survive formatting");
    }
});
