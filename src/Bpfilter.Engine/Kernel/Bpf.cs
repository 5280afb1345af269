using System.Buffers.Binary;
using System.Text;
using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// The bpf() system call. This is the only place that knows <c>union bpf_attr</c> layouts (offsets proven on
/// Linux 6.18, see the project's kernel notes). Every attr is 168 zeroed bytes: stray bytes make the kernel refuse.
/// </summary>
internal static unsafe class Bpf
{
    private const int AttrSize = 168;

    public static FileDescriptor MapCreate(uint type, uint keySize, uint valueSize, uint maxEntries, uint flags, string name)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, type);
        U32(attr, 4, keySize);
        U32(attr, 8, valueSize);
        U32(attr, 12, maxEntries);
        U32(attr, 16, flags);
        Name(attr, 28, name);
        return new FileDescriptor(Call(BpfCommand.MapCreate, attr, $"create map {name}"));
    }

    /// <summary>Looks up <paramref name="key"/>; false when the key is absent (ENOENT).</summary>
    public static bool MapLookup(FileDescriptor map, ReadOnlySpan<byte> key, Span<byte> value)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            U32(attr, 0, (uint)map.Value);
            U64(attr, 8, (ulong)k);
            U64(attr, 16, (ulong)v);
            return CallUnlessAbsent(BpfCommand.MapLookupElem, attr, "look up a map element") is not null;
        }
    }

    public static void MapUpdate(FileDescriptor map, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ulong flags = 0)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            U32(attr, 0, (uint)map.Value);
            U64(attr, 8, (ulong)k);
            U64(attr, 16, (ulong)v);
            U64(attr, 24, flags);
            Call(BpfCommand.MapUpdateElem, attr, "update a map element");
        }
    }

    /// <summary>Deletes <paramref name="key"/>; false when it was not there (ENOENT).</summary>
    public static bool MapDelete(FileDescriptor map, ReadOnlySpan<byte> key)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* k = key)
        {
            U32(attr, 0, (uint)map.Value);
            U64(attr, 8, (ulong)k);
            return CallUnlessAbsent(BpfCommand.MapDeleteElem, attr, "delete a map element") is not null;
        }
    }

    /// <summary>BPF_MAP_GET_NEXT_KEY: the key after <paramref name="key"/> (the first when null) into <paramref name="next"/>; false at the end.</summary>
    public static bool MapGetNextKey(FileDescriptor map, ReadOnlySpan<byte> key, bool first, Span<byte> next)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* k = key)
        fixed (byte* n = next)
        {
            U32(attr, 0, (uint)map.Value);
            U64(attr, 8, first ? 0 : (ulong)k);
            U64(attr, 16, (ulong)n);
            return CallUnlessAbsent(BpfCommand.MapGetNextKey, attr, "walk a map's keys") is not null;
        }
    }

    /// <summary>Makes a map read-only for user space from now on (BPF_MAP_FREEZE).</summary>
    /// <summary>
    /// BPF_MAP_UPDATE_BATCH: <paramref name="count"/> keys and values, each array packed, in one call. False when the
    /// map type has no batch update (an LPM trie), so the caller writes them one by one.
    /// </summary>
    public static bool MapUpdateBatch(FileDescriptor map, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values, uint count)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* k = keys)
        fixed (byte* v = values)
        {
            U64(attr, 16, (ulong)k);
            U64(attr, 24, (ulong)v);
            U32(attr, 32, count);
            U32(attr, 36, (uint)map.Value);
            long result;
            fixed (byte* a = attr) result = LibC.Syscall(LibC.SysBpf, (long)BpfCommand.MapUpdateBatch, a, AttrSize);
            if (result >= 0) return true;
            int errno = LibC.LastError;
            return errno is 22 or 95 or 524 ? false : throw new KernelException("update map elements in a batch", errno); // EINVAL, EOPNOTSUPP, ENOTSUPP
        }
    }

    public static void MapFreeze(FileDescriptor map)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, (uint)map.Value);
        Call(BpfCommand.MapFreeze, attr, "freeze a map");
    }

    /// <summary>BPF_PROG_LOAD. Returns the fd, or the errno with <paramref name="log"/> filled when a log was asked for.</summary>
    public static int ProgLoad(uint type, ReadOnlySpan<byte> instructions, string license, string name, uint expectedAttachType,
        uint ifindex, uint logLevel, byte[]? log, out uint logTrueSize, out int errno)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        var licenseBytes = Encoding.ASCII.GetBytes(license + "\0");
        fixed (byte* insns = instructions)
        fixed (byte* lic = licenseBytes)
        fixed (byte* logBuffer = log)
        {
            U32(attr, 0, type);
            U32(attr, 4, (uint)(instructions.Length / 8));
            U64(attr, 8, (ulong)insns);
            U64(attr, 16, (ulong)lic);
            if (log is not null)
            {
                U32(attr, 24, logLevel);
                U32(attr, 28, (uint)log.Length);
                U64(attr, 32, (ulong)logBuffer);
            }
            Name(attr, 48, name);
            U32(attr, 64, ifindex);
            U32(attr, 68, expectedAttachType);
            long result;
            fixed (byte* a = attr) result = LibC.Syscall(LibC.SysBpf, (long)BpfCommand.ProgLoad, a, AttrSize);
            errno = result < 0 ? LibC.LastError : 0;
            logTrueSize = BinaryPrimitives.ReadUInt32LittleEndian(attr[140..]);
            return (int)result;
        }
    }

    public static void ObjPin(FileDescriptor fd, string path)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = pathBytes)
        {
            U64(attr, 0, (ulong)p);
            U32(attr, 8, (uint)fd.Value);
            Call(BpfCommand.ObjPin, attr, $"pin {path}");
        }
        PrivatePaths.Restrict(path, PrivatePaths.FileMode); // the kernel applies the umask; pins are root's alone whatever it is
    }

    /// <summary>Opens a pinned object; null when nothing is pinned there.</summary>
    public static FileDescriptor? ObjGet(string path, bool readOnly = false)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        var pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = pathBytes)
        {
            U64(attr, 0, (ulong)p);
            if (readOnly) U32(attr, 12, 1 << 3); // BPF_F_RDONLY
            return CallUnlessAbsent(BpfCommand.ObjGet, attr, $"open pinned object {path}") is { } fd ? new FileDescriptor(fd) : null;
        }
    }

    /// <summary>BPF_LINK_CREATE. <paramref name="target"/> is an ifindex or a cgroup fd.</summary>
    public static FileDescriptor LinkCreate(FileDescriptor program, uint target, uint attachType, uint flags, string what) =>
        LinkCreate(program, target, attachType, flags, [], what);

    /// <summary>BPF_LINK_CREATE for netfilter: link_create.netfilter {pf@16, hooknum@20, priority@24 (s32), flags@28}.</summary>
    public static FileDescriptor LinkCreateNetfilter(FileDescriptor program, uint family, uint hookNumber, int priority, uint flags, string what)
    {
        Span<byte> union = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(union, family);
        BinaryPrimitives.WriteUInt32LittleEndian(union[4..], hookNumber);
        BinaryPrimitives.WriteInt32LittleEndian(union[8..], priority);
        BinaryPrimitives.WriteUInt32LittleEndian(union[12..], flags);
        return LinkCreate(program, 0, 45 /* BPF_NETFILTER */, 0, union, what);
    }

    private static FileDescriptor LinkCreate(FileDescriptor program, uint target, uint attachType, uint flags, ReadOnlySpan<byte> union, string what)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, (uint)program.Value);
        U32(attr, 4, target);
        U32(attr, 8, attachType);
        U32(attr, 12, flags);
        union.CopyTo(attr[16..]);
        return new FileDescriptor(Call(BpfCommand.LinkCreate, attr, what));
    }

    /// <summary>Swaps the link's program in one step; with <paramref name="expected"/>, only if it still runs that one.</summary>
    public static void LinkUpdate(FileDescriptor link, FileDescriptor newProgram, FileDescriptor? expected)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, (uint)link.Value);
        U32(attr, 4, (uint)newProgram.Value);
        if (expected is not null)
        {
            U32(attr, 8, 1 << 2); // BPF_F_REPLACE
            U32(attr, 12, (uint)expected.Value);
        }
        Call(BpfCommand.LinkUpdate, attr, "replace the program of a link");
    }

    public static void LinkDetach(FileDescriptor link)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, (uint)link.Value);
        Call(BpfCommand.LinkDetach, attr, "detach a link");
    }

    public static FileDescriptor ProgGetFdById(uint id)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, id);
        return new FileDescriptor(Call(BpfCommand.ProgGetFdById, attr, $"open program id {id}"));
    }

    /// <summary>Every id the kernel has of one kind (programs, maps or links), by the *_GET_NEXT_ID walk (CAP_SYS_ADMIN).</summary>
    public static List<uint> Ids(BpfCommand nextIdCommand)
    {
        var ids = new List<uint>();
        Span<byte> attr = stackalloc byte[AttrSize];
        uint id = 0;
        while (true)
        {
            attr.Clear();
            U32(attr, 0, id);
            if (CallUnlessAbsent(nextIdCommand, attr, "list kernel object ids") is null) return ids;
            id = BinaryPrimitives.ReadUInt32LittleEndian(attr[4..]);
            ids.Add(id);
        }
    }

    /// <summary>BPF_OBJ_GET_INFO_BY_FD into <paramref name="info"/> (bpf_prog_info, bpf_map_info or bpf_link_info).</summary>
    public static void ObjGetInfo(FileDescriptor fd, Span<byte> info)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* i = info)
        {
            U32(attr, 0, (uint)fd.Value);
            U32(attr, 4, (uint)info.Length);
            U64(attr, 8, (ulong)i);
            Call(BpfCommand.ObjGetInfoByFd, attr, "read object info");
        }
    }

    /// <summary>BPF_PROG_TEST_RUN once, with the packet as the program left it (data_out@24, data_size_out@12). Returns the program's return value.</summary>
    public static uint ProgTestRun(FileDescriptor program, ReadOnlySpan<byte> packet, out byte[] output)
    {
        var buffer = new byte[packet.Length + 512];
        uint code = TestRun(program, packet, 1, buffer, out _, out int length);
        output = buffer.AsSpan(0, length).ToArray();
        return code;
    }

    /// <summary>BPF_PROG_TEST_RUN <paramref name="repeat"/> times; <paramref name="durationNs"/> is the kernel's average per run.</summary>
    public static uint ProgTestRun(FileDescriptor program, ReadOnlySpan<byte> packet, uint repeat, out uint durationNs) =>
        TestRun(program, packet, repeat, [], out durationNs, out _);

    /// <summary>prog_fd@0, retval@4, data_size_in@8, data_size_out@12, data_in@16, data_out@24, repeat@32, duration@36.</summary>
    private static uint TestRun(FileDescriptor program, ReadOnlySpan<byte> packet, uint repeat, Span<byte> output, out uint durationNs, out int outputLength)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* data = packet)
        fixed (byte* outBytes = output)
        {
            U32(attr, 0, (uint)program.Value);
            U32(attr, 8, (uint)packet.Length);
            U64(attr, 16, (ulong)data);
            if (output.Length > 0)
            {
                U32(attr, 12, (uint)output.Length);
                U64(attr, 24, (ulong)outBytes);
            }
            U32(attr, 32, repeat);
            Call(BpfCommand.ProgTestRun, attr, "test-run a program");
            durationNs = BinaryPrimitives.ReadUInt32LittleEndian(attr[36..]);
            outputLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(attr[12..]);
            return BinaryPrimitives.ReadUInt32LittleEndian(attr[4..]);
        }
    }

    /// <summary>
    /// BPF_PROG_TEST_RUN of an XDP program on live frames (BPF_F_TEST_XDP_LIVE_FRAMES): the kernel sends
    /// <paramref name="repeat"/> copies of <paramref name="frame"/> through the program in batches of
    /// <paramref name="batchSize"/>, and really transmits or redirects what it returns. False when a signal ended
    /// the run between batches (EINTR), which is how a caller bounds a run by time.
    /// </summary>
    public static bool ProgTestRunLiveFrames(FileDescriptor program, ReadOnlySpan<byte> frame, uint repeat, uint batchSize)
    {
        const uint LiveFrames = 1 << 1;
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        fixed (byte* data = frame)
        {
            U32(attr, 0, (uint)program.Value);
            U32(attr, 8, (uint)frame.Length);
            U64(attr, 16, (ulong)data);
            U32(attr, 32, repeat);
            U32(attr, 64, LiveFrames);
            U32(attr, 72, batchSize);
            long result;
            fixed (byte* a = attr) result = LibC.Syscall(LibC.SysBpf, (long)BpfCommand.ProgTestRun, a, AttrSize);
            if (result >= 0) return true;
            int errno = LibC.LastError;
            return errno == 4 ? false : throw new KernelException("test-run a program on live frames", errno);
        }
    }

    /// <summary>Like <see cref="Call"/>, but ENOENT (no such element or pin) is null instead of an error.</summary>
    private static int? CallUnlessAbsent(BpfCommand command, Span<byte> attr, string what)
    {
        long result;
        fixed (byte* a = attr) result = LibC.Syscall(LibC.SysBpf, (long)command, a, AttrSize);
        if (result >= 0) return (int)result;
        int errno = LibC.LastError;
        return errno == 2 ? null : throw new KernelException(what, errno);
    }

    private static int Call(BpfCommand command, Span<byte> attr, string what)
    {
        long result;
        fixed (byte* a = attr) result = LibC.Syscall(LibC.SysBpf, (long)command, a, AttrSize);
        if (result < 0) throw new KernelException(what, LibC.LastError);
        return (int)result;
    }

    private static void U32(Span<byte> attr, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(attr[offset..], value);
    private static void U64(Span<byte> attr, int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(attr[offset..], value);

    /// <summary>Object names: up to 15 bytes plus the NUL the 16-byte field needs.</summary>
    private static void Name(Span<byte> attr, int offset, string name)
    {
        var bytes = Encoding.ASCII.GetBytes(name);
        bytes.AsSpan(0, Math.Min(bytes.Length, 15)).CopyTo(attr[offset..]);
    }

    /// <summary>
    /// BPF_PROG_GET_FD_BY_ID (13), BPF_MAP_GET_FD_BY_ID (14) or BPF_LINK_GET_FD_BY_ID (30): the id@0, open_flags@8 left 0.
    /// Null when the id is gone (ENOENT): ids can vanish between a *_GET_NEXT_ID walk and this call. Needs CAP_SYS_ADMIN.
    /// </summary>
    public static FileDescriptor? GetFdById(BpfCommand byIdCommand, uint id)
    {
        Span<byte> attr = stackalloc byte[AttrSize];
        attr.Clear();
        U32(attr, 0, id);
        return CallUnlessAbsent(byIdCommand, attr, $"open kernel object id {id}") is int fd ? new FileDescriptor(fd) : null;
    }
}
