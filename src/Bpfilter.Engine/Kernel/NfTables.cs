using System.Buffers.Binary;
using System.Text;
using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Just enough of nf_tables, over netlink (NETLINK_NETFILTER, one batch per change), to keep connection tracking
/// running in a network namespace. The kernel registers conntrack's hooks in a namespace only while something there
/// holds a reference to it (nf_ct_netns_get): an iptables conntrack match, or an nftables ct expression, which takes it
/// when its rule is added and drops it when the rule goes. <see cref="EnsureConntrackTable"/> makes a table of the
/// inet family with one chain that no hook runs, holding one rule with one ct expression: it costs no packet anything
/// and keeps IPv4 and IPv6 tracked until <see cref="DeleteTable"/>. <c>nft list ruleset</c> shows it with its comment.
/// Every call works in the calling thread's namespace (see <see cref="NetworkNamespace.Run{T}"/>).
/// </summary>
public static class NfTables
{
    /// <summary>The chain of a conntrack table.</summary>
    public const string ConntrackChain = "conntrack";

    private const ushort SubsystemNfTables = 10;
    private const ushort MessageNewTable = 0, MessageGetTable = 1, MessageDeleteTable = 2, MessageNewChain = 3, MessageNewRule = 6;
    private const ushort BatchBegin = 0x10, BatchEnd = 0x11, NlmsgError = 2, NlmsgDone = 3;
    private const ushort FlagRequest = 1, FlagAck = 4, FlagExclusive = 0x200, FlagCreate = 0x400, FlagAppend = 0x800;
    private const byte FamilyInet = 1, FamilyUnspec = 0;
    private const ushort Nested = 0x8000;

    // Attributes: NFTA_TABLE_NAME, NFTA_TABLE_USERDATA; NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME; NFTA_RULE_TABLE, NFTA_RULE_CHAIN,
    // NFTA_RULE_EXPRESSIONS; NFTA_LIST_ELEM; NFTA_EXPR_NAME, NFTA_EXPR_DATA; NFTA_CT_DREG, NFTA_CT_KEY.
    private const ushort TableName = 1, TableUserData = 6, ChainTable = 1, ChainName = 3, RuleTable = 1, RuleChain = 2, RuleExpressions = 4;
    private const ushort ListElement = 1, ExpressionName = 1, ExpressionData = 2, CtDestinationRegister = 1, CtKey = 2;
    private const uint CtKeyState = 0, Register1 = 1;
    private const ushort CmpSourceRegister = 1, CmpOperation = 2, CmpData = 3, DataValue = 1, RuleUserData = 7;
    private const uint CmpEqual = 0, CtStateEstablishedBit = 2;

    /// <summary>NFTNL_UDATA_TABLE_COMMENT and NFTNL_UDATA_RULE_COMMENT: the comment nft prints.</summary>
    private const byte UserDataComment = 0;

    /// <summary>nftables' user data: a type, a length, the text with its NUL (at most 128 bytes in all, as nft allows).</summary>
    private static byte[] UserDataText(byte type, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        if (bytes.Length > 125) bytes = bytes[..125];
        return [type, (byte)(bytes.Length + 1), .. bytes, 0];
    }

    /// <summary>
    /// Creates table <paramref name="table"/> (inet) with its ct rule, replacing one of that name in one transaction, so
    /// conntrack never stops in between. Fails with ConntrackUnavailable when the kernel has no nf_tables or ct expression.
    /// </summary>
    public static void EnsureConntrackTable(string table, string comment)
    {
        var batch = new Batch();
        // nft's own idiom for "exactly this table": add (a no-op when it exists), delete, add again.
        batch.Add(MessageNewTable, FlagCreate, w => w.String(TableName, table));
        batch.Add(MessageDeleteTable, 0, w => w.String(TableName, table));
        batch.Add(MessageNewTable, FlagCreate | FlagExclusive, w =>
        {
            w.String(TableName, table);
            w.Bytes(TableUserData, UserDataText(UserDataComment, comment));
        });
        batch.Add(MessageNewChain, FlagCreate, w =>
        {
            w.String(ChainTable, table);
            w.String(ChainName, ConntrackChain);
        });
        batch.Add(MessageNewRule, FlagCreate | FlagAppend, w =>
        {
            w.String(RuleTable, table);
            w.String(RuleChain, ConntrackChain);
            // "ct state established": the state into register 1, compared with IP_CT_ESTABLISHED's bit (host order).
            w.Nest(RuleExpressions, () =>
            {
                w.Nest(ListElement, () =>
                {
                    w.String(ExpressionName, "ct");
                    w.Nest(ExpressionData, () =>
                    {
                        w.BigEndian32(CtDestinationRegister, Register1);
                        w.BigEndian32(CtKey, CtKeyState);
                    });
                });
                w.Nest(ListElement, () =>
                {
                    w.String(ExpressionName, "cmp");
                    w.Nest(ExpressionData, () =>
                    {
                        w.BigEndian32(CmpSourceRegister, Register1);
                        w.BigEndian32(CmpOperation, CmpEqual);
                        w.Nest(CmpData, () => w.Bytes(DataValue, BitConverter.GetBytes(CtStateEstablishedBit)));
                    });
                });
            });
            w.Bytes(RuleUserData, UserDataText(UserDataComment, "never runs (no hook): its ct expression keeps conntrack running"));
        });
        var errors = batch.Send();
        if (errors.FirstOrDefault(e => e.Errno != 0) is { Errno: not 0 } failure)
        {
            var hint = failure.Errno is 2 or 93 or 95 or 97
                ? "the kernel has no nf_tables with the ct expression here (it needs CONFIG_NF_TABLES, CONFIG_NF_CONNTRACK and CONFIG_NFT_CT)"
                : failure.Errno == 1 ? "changing nftables needs CAP_NET_ADMIN in the namespace, and a table of this name that another process owns (nft's owner flag) is its alone" : null;
            throw new KernelException($"create nftables table inet {table} to keep connection tracking running ({failure.What})", failure.Errno, hint, "ConntrackUnavailable", FailureCategory.ResourceUnavailable);
        }
    }

    /// <summary>Deletes table <paramref name="table"/> (inet); false when there is none.</summary>
    public static bool DeleteTable(string table)
    {
        var batch = new Batch();
        batch.Add(MessageDeleteTable, 0, w => w.String(TableName, table));
        var error = batch.Send().FirstOrDefault(e => e.Errno != 0);
        if (error.Errno == 2) return false;
        if (error.Errno != 0) throw new KernelException($"delete nftables table inet {table}", error.Errno);
        return true;
    }

    /// <summary>True when table <paramref name="table"/> (inet) exists.</summary>
    public static bool TableExists(string table)
    {
        using var socket = Open();
        var message = new Writer();
        message.Header((ushort)(SubsystemNfTables << 8 | MessageGetTable), FlagRequest | FlagAck, 1, FamilyInet, 0);
        message.String(TableName, table);
        socket.SendAll(message.Finish());
        bool? found = null;
        int failure = 0;
        socket.Receive((type, seq, payload) =>
        {
            if (seq != 1) return false;
            if (type == (SubsystemNfTables << 8 | MessageNewTable)) found = true;
            if (type != NlmsgError) return false;
            int errno = -BinaryPrimitives.ReadInt32LittleEndian(payload);
            if (errno == 2) found = false;
            else if (errno != 0) failure = errno;
            return true; // the ack (or error) comes last
        });
        if (failure != 0) throw new KernelException($"look up nftables table inet {table}", failure);
        return found ?? throw new KernelException($"look up nftables table inet {table}: no answer", 62 /* ETIME */);
    }

    private readonly record struct Outcome(uint Sequence, int Errno, string What);

    /// <summary>One nfnetlink transaction: begin, the messages (each acknowledged), end.</summary>
    private sealed class Batch
    {
        private readonly Writer _writer = new();
        private readonly List<(uint Sequence, string What)> _messages = new();
        private uint _sequence = 1;

        public Batch() => Framed(BatchBegin, 0, null);

        public void Add(ushort message, ushort flags, Action<Writer> attributes)
        {
            var what = message switch
            {
                MessageNewTable => "add table", MessageDeleteTable => "delete table", MessageNewChain => "add chain", MessageNewRule => "add rule",
                _ => $"message {message}",
            };
            _messages.Add((_sequence, what));
            Framed((ushort)(SubsystemNfTables << 8 | message), (ushort)(flags | FlagAck), attributes, FamilyInet);
        }

        private void Framed(ushort type, ushort flags, Action<Writer>? attributes, byte family = FamilyUnspec)
        {
            int start = _writer.Length;
            _writer.Header(type, (ushort)(flags | FlagRequest), _sequence++, family, type is BatchBegin or BatchEnd ? SubsystemNfTables : (ushort)0);
            attributes?.Invoke(_writer);
            _writer.FinishMessage(start);
        }

        /// <summary>Sends the batch; the kernel answers every message (0 or an error) once the whole batch is done.</summary>
        public List<Outcome> Send()
        {
            Framed(BatchEnd, 0, null);
            using var socket = Open();
            socket.SendAll(_writer.Finish());
            var outcomes = new List<Outcome>();
            var pending = _messages.ToDictionary(m => m.Sequence, m => m.What);
            socket.Receive((type, seq, payload) =>
            {
                if (type != NlmsgError || !pending.Remove(seq, out var what)) return false;
                outcomes.Add(new Outcome(seq, -BinaryPrimitives.ReadInt32LittleEndian(payload), what));
                return pending.Count == 0;
            });
            if (pending.Count > 0) throw new KernelException("talk to nf_tables: the kernel did not answer every message of a batch", 62 /* ETIME */);
            return outcomes;
        }
    }

    private static NetlinkSocket Open()
    {
        int fd = LibC.Socket(LibC.AfNetlink, LibC.SockRaw | LibC.SockCloexec, LibC.NetlinkNetfilter);
        if (fd < 0) throw new KernelException("open a netlink socket to nf_tables", LibC.LastError, null, "ConntrackUnavailable", FailureCategory.ResourceUnavailable);
        return new NetlinkSocket(new FileDescriptor(fd));
    }

    private sealed unsafe class NetlinkSocket(FileDescriptor fd) : IDisposable
    {
        public void SendAll(byte[] data)
        {
            fixed (byte* p = data)
            {
                if (LibC.Send(fd.Value, p, (nuint)data.Length, 0) != data.Length)
                    throw new KernelException("send to nf_tables", LibC.LastError);
            }
        }

        /// <summary>Messages as they arrive, until <paramref name="enough"/> says so, an NLMSG_DONE, or five seconds of silence.</summary>
        public void Receive(Func<ushort, uint, byte[], bool> enough)
        {
            var timeval = stackalloc long[2] { 5, 0 }; // struct timeval {5 s, 0 µs}
            LibC.Setsockopt(fd.Value, LibC.SolSocket, LibC.SoRcvtimeo, timeval, 16);
            var buffer = new byte[1 << 16];
            while (true)
            {
                nint received;
                fixed (byte* p = buffer) received = LibC.Recv(fd.Value, p, (nuint)buffer.Length, 0);
                if (received < 0)
                {
                    int errno = LibC.LastError;
                    if (errno == 4) continue;
                    if (errno == 11) return; // silence: the caller finds what is missing
                    throw new KernelException("receive from nf_tables", errno);
                }
                for (int at = 0; at + 16 <= received;)
                {
                    int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(at));
                    if (length < 16 || at + length > received) break;
                    ushort type = BinaryPrimitives.ReadUInt16LittleEndian(buffer.AsSpan(at + 4));
                    uint seq = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(at + 8));
                    if (type == NlmsgDone || enough(type, seq, buffer.AsSpan(at + 16, length - 16).ToArray())) return;
                    at += (length + 3) & ~3;
                }
            }
        }

        public void Dispose() => fd.Dispose();
    }

    /// <summary>Netlink messages: struct nlmsghdr, struct nfgenmsg, then attributes (struct nlattr, 4-byte aligned).</summary>
    private sealed class Writer
    {
        private readonly List<byte> _bytes = new();

        public int Length => _bytes.Count;

        public void Header(ushort type, ushort flags, uint sequence, byte family, ushort resourceId)
        {
            U32(0); // the length, filled in by FinishMessage
            U16(type);
            U16(flags);
            U32(sequence);
            U32(0); // port id: the kernel's
            _bytes.Add(family);
            _bytes.Add(0); // NFNETLINK_V0
            _bytes.Add((byte)(resourceId >> 8)); // big-endian res_id
            _bytes.Add((byte)resourceId);
        }

        public void FinishMessage(int start)
        {
            int length = _bytes.Count - start;
            for (int i = 0; i < 4; i++) _bytes[start + i] = (byte)(length >> (8 * i));
        }

        /// <summary>The single message written since the start (for a request outside a batch).</summary>
        public byte[] Finish()
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(_bytes.Take(4).ToArray()) == 0) FinishMessage(0);
            return _bytes.ToArray();
        }

        public void String(ushort type, string value) => Bytes(type, [.. Encoding.UTF8.GetBytes(value), 0]);

        public void BigEndian32(ushort type, uint value) => Bytes(type, [(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);

        public void Bytes(ushort type, byte[] value)
        {
            U16((ushort)(4 + value.Length));
            U16(type);
            _bytes.AddRange(value);
            Pad();
        }

        public void Nest(ushort type, Action inner)
        {
            int start = _bytes.Count;
            U16(0);
            U16((ushort)(type | Nested));
            inner();
            int length = _bytes.Count - start;
            _bytes[start] = (byte)length;
            _bytes[start + 1] = (byte)(length >> 8);
        }

        private void Pad()
        {
            while (_bytes.Count % 4 != 0) _bytes.Add(0);
        }

        private void U16(ushort value)
        {
            _bytes.Add((byte)value);
            _bytes.Add((byte)(value >> 8));
        }

        private void U32(uint value)
        {
            for (int i = 0; i < 4; i++) _bytes.Add((byte)(value >> (8 * i)));
        }
    }
}
