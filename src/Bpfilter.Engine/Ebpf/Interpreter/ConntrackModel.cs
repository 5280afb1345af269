namespace Bpfilter.Engine.Ebpf.Interpreter;

/// <summary>
/// What the kernel's connection tracking shows one run. The interpreter keeps no connection table: a run sees the
/// conntrack its socket buffer carries (<see cref="SkbNfct"/>, for loads of sk_buff._nfct at the offset
/// <see cref="InterpreterOptions.Conntrack"/> gives) and one answer that every
/// bpf_skb_ct_lookup and bpf_xdp_ct_lookup of the run gets (<see cref="Lookup"/>), whatever tuple it asks for. With no
/// model (<see cref="None"/>) a packet has no conntrack and lookups find nothing, as for BPF_PROG_TEST_RUN in a
/// namespace that tracks nothing.
/// </summary>
public sealed record ConntrackModel
{
    public static ConntrackModel None { get; } = new();

    /// <summary>sk_buff._nfct: 0 (no conntrack), else the connection's address with enum ip_conntrack_info in the low 3 bits (7 alone: untracked).</summary>
    public ulong SkbNfct { get; init; }

    /// <summary>What the lookups find; null for nothing (opts->error = -ENOENT).</summary>
    public ConntrackEntry? Lookup { get; init; }

    /// <summary>An address the model's connection may have in <see cref="SkbNfct"/> (8-byte aligned, in the kernel's direct map).</summary>
    public const ulong ConnectionAddress = 0xffff_8881_2345_6700;
}

/// <summary>The offsets (from the kernel's BTF) of the fields a conntrack model fills in: sk_buff._nfct and nf_conn.status, both 8 bytes.</summary>
public sealed record ConntrackLayout(int SkbNfct, int ConnectionStatus);

/// <summary>A connection a lookup finds: its nf_conn.status bits (IPS_EXPECTED 1, IPS_SEEN_REPLY 2, IPS_ASSURED 4, IPS_CONFIRMED 8) and the direction of the tuple asked for (0 original, 1 reply).</summary>
public sealed record ConntrackEntry(ulong Status, byte Direction)
{
    public const ulong Expected = 1, SeenReply = 2, Assured = 4, Confirmed = 8;
}
