//! Network partition of one node on loopback: the front-end (and anyone else) can no longer
//! reach the node's RPC port, while the node process keeps running and holds its sockets.
//!
//! Mechanism: a `clsact` qdisc on `lo` and, per partitioned port, a `tc` filter with a
//! classic-BPF program in direct-action mode that returns `TC_ACT_SHOT` (drop) for TCP
//! segments whose source or destination port is the node's port. Every loopback packet
//! crosses `lo`'s ingress hook once, so one filter cuts both directions, for established
//! pooled connections as well as new ones (SYNs vanish: connect times out, as across a
//! real partition, rather than being refused).
//!
//! Why not `prio` + `u32 ... action drop`, or iptables? Measured on this machine's kernel:
//! `sch_prio` and the `gact`/`police` actions are not built, and no iptables/nft binary is
//! installed; `clsact`, `cls_bpf` and classic BPF are. The filter's preference number is
//! the port itself, so it can be found and removed precisely, and two drills partitioning
//! different ports do not collide.
//!
//! The [`Partition`] guard removes its filter when dropped, so every exit path (normal end,
//! error, panic unwinding, Ctrl-C dropping the drill's future) heals the partition. Only a
//! SIGKILL of the drill itself leaves it behind; `wikisearch drill --fault partition` on the
//! same node removes a stale filter before it starts.

use std::process::Command;

use anyhow::{bail, Context};

/// The loopback device all local cluster traffic crosses.
const DEVICE: &str = "lo";

/// A dropped-packets rule for one TCP port on `lo`, removed on drop.
#[derive(Debug)]
pub struct Partition {
    port: u16,
    created_qdisc: bool,
    removed: bool,
}

impl Partition {
    /// Cuts the port off. Fails with a message saying what is missing (root, `tc`, kernel
    /// support) when the process may not do it here.
    pub fn install(port: u16) -> anyhow::Result<Partition> {
        check_permitted()?;
        let created_qdisc = ensure_clsact()?;
        // A filter left by a drill that was SIGKILLed would make `add` fail.
        let _ = tc(&[
            "filter",
            "del",
            "dev",
            DEVICE,
            "ingress",
            "pref",
            &port.to_string(),
        ]);
        let program = drop_port_program(port);
        let added = tc(&[
            "filter",
            "add",
            "dev",
            DEVICE,
            "ingress",
            "protocol",
            "ip",
            "pref",
            &port.to_string(),
            "bpf",
            "bytecode",
            &program,
            "da",
        ]);
        if let Err(err) = added {
            if created_qdisc {
                let _ = tc(&["qdisc", "del", "dev", DEVICE, "clsact"]);
            }
            return Err(err.context(
                "cannot install a tc bpf filter on lo (needs CONFIG_NET_CLS_BPF and \
                 CONFIG_NET_SCH_INGRESS in the kernel)",
            ));
        }
        Ok(Partition {
            port,
            created_qdisc,
            removed: false,
        })
    }

    /// The partitioned port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Removes the rule now (also done on drop).
    pub fn heal(&mut self) -> anyhow::Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let port = self.port.to_string();
        tc(&["filter", "del", "dev", DEVICE, "ingress", "pref", &port])
            .with_context(|| format!("cannot remove the partition of port {port}"))?;
        if self.created_qdisc && no_filters_left() {
            let _ = tc(&["qdisc", "del", "dev", DEVICE, "clsact"]);
        }
        Ok(())
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if let Err(err) = self.heal() {
            eprintln!(
                "drill: {err:#}: remove it with `tc filter del dev lo ingress pref {}`",
                self.port
            );
        }
    }
}

/// Whether this process may change traffic control on `lo`; the error says why not.
pub fn check_permitted() -> anyhow::Result<()> {
    let euid = crate::proc_stats::effective_uid();
    if euid != 0 {
        bail!(
            "partition needs root (CAP_NET_ADMIN) to add a tc filter on lo; running as uid \
             {euid}. Run the drill with sudo, or pick another fault"
        );
    }
    match Command::new("tc").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!(
            "`tc -V` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => bail!("partition needs `tc` from iproute2 ({err}); install iproute2"),
    }
}

/// Adds the `clsact` qdisc if absent; true if this call added it.
fn ensure_clsact() -> anyhow::Result<bool> {
    let shown = tc(&["qdisc", "show", "dev", DEVICE])?;
    if shown.contains("clsact") {
        return Ok(false);
    }
    match tc(&["qdisc", "add", "dev", DEVICE, "clsact"]) {
        Ok(_) => Ok(true),
        // Another drill added it between our look and our add.
        Err(_) if tc(&["qdisc", "show", "dev", DEVICE])?.contains("clsact") => Ok(false),
        Err(err) => Err(err.context("cannot add a clsact qdisc on lo")),
    }
}

fn no_filters_left() -> bool {
    let ingress = tc(&["filter", "show", "dev", DEVICE, "ingress"]).unwrap_or_default();
    let egress = tc(&["filter", "show", "dev", DEVICE, "egress"]).unwrap_or_default();
    ingress.trim().is_empty() && egress.trim().is_empty()
}

/// Runs `tc ARGS`, returning its stdout or an error carrying its stderr.
fn tc(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("tc")
        .args(args)
        .output()
        .with_context(|| format!("cannot run `tc {}`", args.join(" ")))?;
    crate::supervisor::stdout_of("tc", args, out)
}

/// Classic BPF, in tc's `bytecode` syntax (`count,op jt jf k,...`): drop (TC_ACT_SHOT = 2)
/// unfragmented IPv4 TCP segments with source or destination port `port`; anything else
/// falls through (TC_ACT_UNSPEC = -1). At `lo`'s ingress cls_bpf sees the 14-byte Ethernet
/// header first, so the IPv4 header starts at offset 14.
fn drop_port_program(port: u16) -> String {
    let p = u32::from(port);
    let ops: [(u16, u8, u8, u32); 11] = [
        (0x30, 0, 0, 23),       // 0: A = ip protocol
        (0x15, 0, 7, 6),        // 1: if A != TCP goto 9 (pass)
        (0x28, 0, 0, 20),       // 2: A = flags + fragment offset
        (0x45, 5, 0, 0x1fff),   // 3: if fragment offset != 0 goto 9 (pass)
        (0xb1, 0, 0, 14),       // 4: X = ip header length
        (0x48, 0, 0, 14),       // 5: A = tcp source port
        (0x15, 3, 0, p),        // 6: if A == port goto 10 (drop)
        (0x48, 0, 0, 16),       // 7: A = tcp destination port
        (0x15, 1, 0, p),        // 8: if A == port goto 10 (drop)
        (0x06, 0, 0, u32::MAX), // 9: return TC_ACT_UNSPEC
        (0x06, 0, 0, 2),        // 10: return TC_ACT_SHOT
    ];
    let mut text = ops.len().to_string();
    for (code, jt, jf, k) in ops {
        text.push_str(&format!(",{code} {jt} {jf} {k}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_is_what_tc_expects() {
        assert_eq!(
            drop_port_program(18777),
            "11,48 0 0 23,21 0 7 6,40 0 0 20,69 5 0 8191,177 0 0 14,72 0 0 14,21 3 0 18777,\
             72 0 0 16,21 1 0 18777,6 0 0 4294967295,6 0 0 2"
        );
    }
}
