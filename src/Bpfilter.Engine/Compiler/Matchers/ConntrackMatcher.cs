using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Compiler.Matchers;

/// <summary>Where a hook learns a packet's connection state.</summary>
internal enum ConntrackSource
{
    /// <summary>The hook cannot know it (cgroup hooks: TCP resets the skb's conntrack before the socket filter runs).</summary>
    None,
    /// <summary>
    /// The conntrack the kernel attached to the socket buffer (skb->_nfct): exactly what iptables' conntrack match
    /// sees. Netfilter hooks reach the skb through their context; tc-egress through bpf_cast_to_kern_ctx, after
    /// netfilter's POSTROUTING has confirmed the connection.
    /// </summary>
    Attached,
    /// <summary>
    /// xdp and tc-ingress run before netfilter's conntrack has seen the packet: they ask the connection table with
    /// bpf_xdp_ct_lookup / bpf_skb_ct_lookup and say what conntrack will say, for TCP and UDP and for ICMP errors that
    /// quote TCP or UDP (the lookups know no other protocol).
    /// </summary>
    Lookup,
}

/// <summary>
/// ct-state and ct-direction. After the parser, programs whose rules ask for either put the packet's state (one
/// <see cref="CtStates"/> bit) and direction into the packet record, once; the rules test those fields.
/// </summary>
internal static class ConntrackMatcher
{
    /// <summary>The direction field: a bit per direction, both bits for a packet without a connection.</summary>
    public const int DirectionOriginal = 1, DirectionReply = 2, DirectionNone = 3;

    /// <summary>enum ip_conntrack_info: ctinfo % 3 is the state, ctinfo &gt;= 3 a reply; 7 alone is untracked.</summary>
    private const int CtInfoMask = 7, CtInfoUntracked = 7, CtInfoIsReply = 3;

    /// <summary>struct nf_conn's status bits: IPS_EXPECTED, IPS_SEEN_REPLY.</summary>
    private const int StatusExpected = 1, StatusSeenReply = 2;

    /// <summary>struct bpf_ct_opts {s32 netns_id; s32 error; u8 l4proto; u8 dir; u16 ct_zone_id; u8 ct_zone_dir; u8 reserved[3]}.</summary>
    private const int OptsSize = 16, OptsError = 4, OptsProtocol = 8, OptsDirection = 9;
    private const int CurrentNetns = -1, ENOENT = 2;

    /// <summary>struct bpf_sock_tuple: {saddr, daddr, sport, dport} of IPv4 (12 bytes) or IPv6 (36 bytes), in network order.</summary>
    private const int TupleIpv4Size = 12, TupleIpv6Size = 36;
    private const short Tuple = PacketRecord.Buffer, Opts = PacketRecord.Buffer + 40;

    /// <summary>The priority conntrack runs at in PRE_ROUTING and LOCAL_OUT (NF_IP_PRI_CONNTRACK).</summary>
    public const int ConntrackPriority = -200;

    public static ConntrackSource SourceOf(Hook hook) => hook switch
    {
        Hook.Xdp or Hook.TcIngress => ConntrackSource.Lookup,
        Hook.TcEgress => ConntrackSource.Attached,
        Hook.CgroupIngress or Hook.CgroupEgress => ConntrackSource.None,
        _ => ConntrackSource.Attached,
    };

    /// <summary>True when a rule of the chain, or of a user chain it reaches, matches on connection state.</summary>
    public static bool Uses(Ruleset ruleset, Chain chain) =>
        chain.Rules.Concat(ruleset.Reachable(chain.Rules).SelectMany(u => u.Rules)).Any(r => r.Match.CtState is not null || r.Match.CtDirection is not null);

    /// <summary>The conditions of a rule's ct-state and ct-direction.</summary>
    public static IEnumerable<Condition> For(Match match)
    {
        // The state field holds one bit: "in the set" is (field &amp; set) != 0, the negation of a zero test.
        if (match.CtState is { } state) yield return new Condition(new FieldEquals(PacketRecord.CtState, (uint)state.States, 0), negated: !state.Negated);
        if (match.CtDirection is { } direction)
        {
            uint bit = direction == CtDirection.Original ? (uint)DirectionOriginal : DirectionReply;
            // iptables' conntrack match ignores --ctdir for a packet without a connection when --ctstate is given too.
            yield return match.CtState is null
                ? new Condition(new FieldEquals(PacketRecord.CtDirection, bit))
                : new Condition(new FieldEquals(PacketRecord.CtDirection, bit, 0), negated: true);
        }
    }

    /// <summary>Keeps the context (r1 at entry) on the stack for <see cref="EmitState"/>.</summary>
    public static void SaveContext(Assembler asm) => asm.Store(Size.DoubleWord, Register.R10, PacketRecord.Context, Register.R1);

    /// <summary>
    /// Fills the record's state and direction; runs once, after the parser. Uses r0–r6 and r9. At a hook that knows
    /// no state it emits nothing: the rule that asks is refused with the rule's own name (MatchNotAtHook).
    /// </summary>
    public static void EmitState(Assembler asm, HookFlavour hook, Chain chain)
    {
        if (SourceOf(chain.Hook) == ConntrackSource.None) return;
        if (chain.Hook is Hook.NfPrerouting or Hook.NfOutput && chain.Priority is int priority && priority - 1 <= ConntrackPriority)
            throw new BpfilterException("CtStateBeforeConntrack", FailureCategory.InvalidData,
                $"chain '{chain.Name}' matches on connection state at {chain.Hook.ToName()} with priority {priority}, but conntrack runs there at "
                + $"{ConntrackPriority}, so its packets have no state yet: give the chain priority {ConntrackPriority + 2} or above "
                + "(a republish runs the new program one below the chain's priority)");
        var done = asm.NewLabel("ct_state_done");
        switch (SourceOf(chain.Hook))
        {
            case ConntrackSource.Attached:
                EmitAttached(asm, chain.Hook, done);
                break;
            default:
                EmitLookup(asm, hook, chain.Hook == Hook.Xdp ? "bpf_xdp_ct_lookup" : "bpf_skb_ct_lookup", done);
                break;
        }
        asm.Mark(done);
    }

    private static void Set(Assembler asm, CtStates state, int direction, Label done)
    {
        PacketRecord.Store(asm, PacketRecord.CtState, (int)state);
        PacketRecord.Store(asm, PacketRecord.CtDirection, direction);
        asm.Jump(done);
    }

    /// <summary>The state from skb->_nfct, as xt_conntrack reads it: no connection is invalid, or untracked when ctinfo says so.</summary>
    private static void EmitAttached(Assembler asm, Hook hook, Label done)
    {
        asm.Load(Size.DoubleWord, Register.R1, Register.R10, PacketRecord.Context);
        if (hook == Hook.TcEgress)
        {
            asm.CallKfunc("bpf_cast_to_kern_ctx"); // the struct sk_buff behind the __sk_buff context
            asm.Mov(Register.R1, Register.R0);
        }
        else
        {
            asm.Load(Size.DoubleWord, Register.R1, Register.R1, 8); // bpf_nf_ctx->skb
        }
        asm.Load(Size.DoubleWord, Register.R2, Register.R1, (short)Kernel.Btf.MemberOffset("sk_buff", "_nfct"));
        asm.Mov(Register.R3, Register.R2);
        asm.Alu64(AluOp.And, Register.R3, CtInfoMask);
        asm.Alu64(AluOp.And, Register.R2, ~CtInfoMask);
        var tracked = asm.NewLabel("ct_tracked");
        var untracked = asm.NewLabel("ct_untracked");
        asm.Jump(JumpOp.Jne, Register.R2, 0, tracked);
        asm.Jump(JumpOp.Jeq, Register.R3, CtInfoUntracked, untracked);
        Set(asm, CtStates.Invalid, DirectionNone, done);
        asm.Mark(untracked);
        Set(asm, CtStates.Untracked, DirectionNone, done);

        asm.Mark(tracked);
        var original = asm.NewLabel("ct_original");
        asm.Jump(JumpOp.Jlt, Register.R3, CtInfoIsReply, original);
        var reply = asm.NewLabel("ct_reply");
        asm.Jump(reply);
        foreach (var (label, direction) in new[] { (original, DirectionOriginal), (reply, DirectionReply) })
        {
            asm.Mark(label);
            if (direction == DirectionReply) asm.Alu64(AluOp.Sub, Register.R3, CtInfoIsReply);
            var related = asm.NewLabel("ct_related");
            var isNew = asm.NewLabel("ct_new");
            asm.Jump(JumpOp.Jeq, Register.R3, 1, related);
            asm.Jump(JumpOp.Jeq, Register.R3, 2, isNew);
            Set(asm, CtStates.Established, direction, done); // ctinfo 0, 3 (and 6, which no packet carries)
            asm.Mark(related);
            Set(asm, CtStates.Related, direction, done);
            asm.Mark(isNew);
            Set(asm, CtStates.New, direction, done);
        }
    }

    /// <summary>
    /// Asks the connection table. TCP and UDP: found in the reply direction or with a reply seen is established, an
    /// expected connection is related, anything else found is new, and nothing found is new (conntrack will start
    /// a connection). An ICMP error quoting TCP or UDP: related to the connection it quotes, invalid when none is
    /// known. Every other packet (other protocols, ICMP queries, later fragments) is untracked here.
    /// </summary>
    private static void EmitLookup(Assembler asm, HookFlavour hook, string lookup, Label done)
    {
        var untracked = asm.NewLabel("ct_untracked");
        var tcpUdp = asm.NewLabel("ct_tcp_udp");
        var icmp = asm.NewLabel("ct_icmp");
        var icmpv6 = asm.NewLabel("ct_icmpv6");
        PacketRecord.Load(asm, PacketRecord.HasTransport, Register.R1);
        asm.Jump(JumpOp.Jne, Register.R1, 1, untracked);
        PacketRecord.Load(asm, PacketRecord.Protocol, Register.R1);
        asm.Jump(JumpOp.Jeq, Register.R1, 6, tcpUdp);
        asm.Jump(JumpOp.Jeq, Register.R1, 17, tcpUdp);
        asm.Jump(JumpOp.Jeq, Register.R1, 1, icmp); // the parser reads ICMP's type only in IPv4, ICMPv6's only in IPv6
        asm.Jump(JumpOp.Jeq, Register.R1, 58, icmpv6);
        asm.Jump(untracked);

        // The packet's own tuple, from the record (host order there, network order in the tuple).
        asm.Mark(tcpUdp);
        var tcpUdpV6 = asm.NewLabel("ct_tcp_udp_v6");
        var tcpUdpAsk = asm.NewLabel("ct_tcp_udp_ask");
        PacketRecord.Load(asm, PacketRecord.Family, Register.R1);
        asm.Jump(JumpOp.Jeq, Register.R1, 6, tcpUdpV6);
        CopyAddress(asm, PacketRecord.SourceAddress, 1, Tuple);
        CopyAddress(asm, PacketRecord.DestinationAddress, 1, Tuple + 4);
        CopyPort(asm, PacketRecord.SourcePort, Tuple + 8);
        CopyPort(asm, PacketRecord.DestinationPort, Tuple + 10);
        asm.Mov(Register.R3, TupleIpv4Size);
        asm.Jump(tcpUdpAsk);
        asm.Mark(tcpUdpV6);
        CopyAddress(asm, PacketRecord.SourceAddress, 4, Tuple);
        CopyAddress(asm, PacketRecord.DestinationAddress, 4, Tuple + 16);
        CopyPort(asm, PacketRecord.SourcePort, Tuple + 32);
        CopyPort(asm, PacketRecord.DestinationPort, Tuple + 34);
        asm.Mov(Register.R3, TupleIpv6Size);
        asm.Mark(tcpUdpAsk);
        PacketRecord.Load(asm, PacketRecord.Protocol, Register.R1);
        var missed = asm.NewLabel("ct_missed");
        EmitAsk(asm, lookup, missed);
        var originalWay = asm.NewLabel("ct_found_original");
        asm.Jump(JumpOp.Jne, Register.R1, 1, originalWay);
        Set(asm, CtStates.Established, DirectionReply, done);
        asm.Mark(originalWay);
        var replySeen = asm.NewLabel("ct_reply_seen");
        var notExpected = asm.NewLabel("ct_no_reply_seen");
        asm.Jump(JumpOp.Jset, Register.R9, StatusSeenReply, replySeen);
        asm.Jump(notExpected);
        asm.Mark(replySeen);
        Set(asm, CtStates.Established, DirectionOriginal, done);
        asm.Mark(notExpected);
        var expected = asm.NewLabel("ct_expected");
        asm.Jump(JumpOp.Jset, Register.R9, StatusExpected, expected);
        Set(asm, CtStates.New, DirectionOriginal, done);
        asm.Mark(expected);
        Set(asm, CtStates.Related, DirectionOriginal, done);
        asm.Mark(missed);
        var otherError = asm.NewLabel("ct_lookup_failed");
        asm.Load(Size.Word, Register.R1, Register.R10, (short)(Opts + OptsError));
        asm.Jump32(JumpOp.Jne, Register.R1, unchecked((uint)-ENOENT), otherError);
        Set(asm, CtStates.New, DirectionOriginal, done);
        asm.Mark(otherError);
        Set(asm, CtStates.Invalid, DirectionNone, done);

        // ICMP errors: the quoted packet's tuple turned around is the error's own way through the connection.
        var related = asm.NewLabel("ct_error_ask");
        asm.Mark(icmp);
        EmitIcmpErrorTypes(asm, [3, 4, 5, 11, 12], untracked);
        hook.EmitHeader(asm, null, hook.NetworkOffset, 20, untracked);
        asm.Load(Size.Byte, Register.R6, Register.R0, 0);
        asm.Alu64(AluOp.And, Register.R6, 0x0f);
        asm.Alu64(AluOp.Lsh, Register.R6, 2);
        asm.Alu64(AluOp.Add, Register.R6, hook.NetworkOffset + 8); // the quoted IPv4 header
        hook.EmitHeader(asm, Register.R6, 0, 20, untracked);
        asm.Load(Size.Byte, Register.R1, Register.R0, 0);
        asm.Mov(Register.R2, Register.R1);
        asm.Alu64(AluOp.Rsh, Register.R2, 4);
        asm.Jump(JumpOp.Jne, Register.R2, 4, untracked);
        asm.Alu64(AluOp.And, Register.R1, 0x0f);
        asm.Alu64(AluOp.Lsh, Register.R1, 2);
        asm.Jump(JumpOp.Jlt, Register.R1, 20, untracked);
        asm.Alu64(AluOp.Add, Register.R6, Register.R1);             // its transport header
        QuotedProtocol(asm, Register.R0, 9, untracked);
        CopyBytes(asm, Register.R0, 16, Tuple, 4);                  // quoted destination: the error's source
        CopyBytes(asm, Register.R0, 12, Tuple + 4, 4);
        hook.EmitHeader(asm, Register.R6, 0, 4, untracked);
        CopyBytes(asm, Register.R0, 2, Tuple + 8, 2);               // quoted destination port: the error's source port
        CopyBytes(asm, Register.R0, 0, Tuple + 10, 2);
        asm.Mov(Register.R3, TupleIpv4Size);
        asm.Jump(related);

        asm.Mark(icmpv6);
        EmitIcmpErrorTypes(asm, [1, 2, 3, 4], untracked);
        // Only an ICMPv6 right after the fixed header: the quoted packet is then at a known place.
        hook.EmitHeader(asm, null, hook.NetworkOffset, 40, untracked);
        asm.Load(Size.Byte, Register.R1, Register.R0, 6);
        asm.Jump(JumpOp.Jne, Register.R1, 58, untracked);
        hook.EmitHeader(asm, null, hook.NetworkOffset + 48, 44, untracked);
        asm.Load(Size.Byte, Register.R1, Register.R0, 0);
        asm.Alu64(AluOp.Rsh, Register.R1, 4);
        asm.Jump(JumpOp.Jne, Register.R1, 6, untracked);
        QuotedProtocol(asm, Register.R0, 6, untracked);
        CopyBytes(asm, Register.R0, 24, Tuple, 16);
        CopyBytes(asm, Register.R0, 8, Tuple + 16, 16);
        CopyBytes(asm, Register.R0, 42, Tuple + 32, 2);
        CopyBytes(asm, Register.R0, 40, Tuple + 34, 2);
        asm.Mov(Register.R3, TupleIpv6Size);

        asm.Mark(related);
        asm.Load(Size.Byte, Register.R1, Register.R10, (short)(Opts + OptsProtocol)); // QuotedProtocol left it there
        var unknown = asm.NewLabel("ct_error_unknown");
        EmitAsk(asm, lookup, unknown);
        var errorOriginal = asm.NewLabel("ct_error_original");
        asm.Jump(JumpOp.Jne, Register.R1, 1, errorOriginal);
        Set(asm, CtStates.Related, DirectionReply, done);
        asm.Mark(errorOriginal);
        Set(asm, CtStates.Related, DirectionOriginal, done);
        asm.Mark(unknown);
        Set(asm, CtStates.Invalid, DirectionNone, done); // as conntrack says of an error about no connection it knows

        asm.Mark(untracked);
        Set(asm, CtStates.Untracked, DirectionNone, done);
    }

    private static void EmitIcmpErrorTypes(Assembler asm, int[] types, Label untracked)
    {
        var error = asm.NewLabel("ct_icmp_error");
        PacketRecord.Load(asm, PacketRecord.IcmpType, Register.R1);
        foreach (var type in types) asm.Jump(JumpOp.Jeq, Register.R1, type, error);
        asm.Jump(untracked);
        asm.Mark(error);
    }

    /// <summary>The quoted packet's protocol (byte <paramref name="offset"/> of its header): TCP or UDP goes on, kept in opts.l4proto.</summary>
    private static void QuotedProtocol(Assembler asm, Register header, short offset, Label untracked)
    {
        var known = asm.NewLabel("ct_quoted_tcp_udp");
        asm.Load(Size.Byte, Register.R1, header, offset);
        asm.Jump(JumpOp.Jeq, Register.R1, 6, known);
        asm.Jump(JumpOp.Jeq, Register.R1, 17, known);
        asm.Jump(untracked);
        asm.Mark(known);
        asm.Store(Size.Byte, Register.R10, (short)(Opts + OptsProtocol), Register.R1);
    }

    /// <summary>
    /// Looks the tuple up (r3 its size, r1 the protocol). Found: r1 = the direction found, r9 = the connection's status,
    /// its reference already released. Not found: a jump to <paramref name="missed"/>, opts.error saying why.
    /// </summary>
    private static void EmitAsk(Assembler asm, string lookup, Label missed)
    {
        asm.Mov(Register.R6, Register.R1);
        asm.Store(Size.DoubleWord, Register.R10, Opts, 0);
        asm.Store(Size.DoubleWord, Register.R10, (short)(Opts + 8), 0);
        asm.Store(Size.Word, Register.R10, Opts, CurrentNetns);
        asm.Store(Size.Byte, Register.R10, (short)(Opts + OptsProtocol), Register.R6);
        asm.Load(Size.DoubleWord, Register.R1, Register.R10, PacketRecord.Context);
        asm.Mov(Register.R2, Register.R10);
        asm.Alu64(AluOp.Add, Register.R2, Tuple);
        asm.Mov(Register.R4, Register.R10);
        asm.Alu64(AluOp.Add, Register.R4, Opts);
        asm.Mov(Register.R5, OptsSize);
        asm.CallKfunc(lookup);
        asm.Jump(JumpOp.Jeq, Register.R0, 0, missed);
        asm.Mov(Register.R6, Register.R0);
        asm.Load(Size.DoubleWord, Register.R9, Register.R6, (short)Kernel.Btf.MemberOffset("nf_conn", "status"));
        asm.Mov(Register.R1, Register.R6);
        asm.CallKfunc("bpf_ct_release");
        asm.Load(Size.Byte, Register.R1, Register.R10, (short)(Opts + OptsDirection));
    }

    /// <summary>Address words of the record (host order) into the tuple (network order).</summary>
    private static void CopyAddress(Assembler asm, Func<int, short> word, int words, int to)
    {
        for (int i = 0; i < words; i++)
        {
            PacketRecord.Load(asm, word(i));
            asm.FromBigEndian(Register.R0, 32);
            asm.Store(Size.Word, Register.R10, (short)(to + 4 * i), Register.R0);
        }
    }

    private static void CopyPort(Assembler asm, short field, int to)
    {
        PacketRecord.Load(asm, field);
        asm.FromBigEndian(Register.R0, 16);
        asm.Store(Size.Half, Register.R10, (short)to, Register.R0);
    }

    /// <summary>Packet bytes (through <paramref name="from"/>) into the tuple, as they are: both are in network order.</summary>
    private static void CopyBytes(Assembler asm, Register from, short offset, int to, int length)
    {
        for (int done = 0; done < length;)
        {
            var size = length - done >= 4 ? Size.Word : Size.Half;
            int width = size == Size.Word ? 4 : 2;
            asm.Load(size, Register.R1, from, (short)(offset + done));
            asm.Store(size, Register.R10, (short)(to + done), Register.R1);
            done += width;
        }
    }
}
