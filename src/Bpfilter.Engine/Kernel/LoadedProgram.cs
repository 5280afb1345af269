using System.Buffers.Binary;
using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Kernel;

/// <summary>What the kernel says about a loaded program (struct bpf_prog_info).</summary>
public sealed record ProgramInfo(uint Id, ProgramType Type, string Name, string Tag, uint XlatedBytes, uint JitedBytes, ulong LoadTimeBootNs);

/// <summary>A program the verifier accepted, held through its fd.</summary>
public sealed class LoadedProgram : IDisposable
{
    private LoadedProgram(FileDescriptor fd) => Fd = fd;

    public FileDescriptor Fd { get; }

    /// <summary>
    /// Loads <paramref name="program"/> with its maps' fds patched in. As libbpf does, the first try asks for no
    /// log (a log that does not fit fails even a valid load); on failure a second try fetches the verifier's reason.
    /// </summary>
    /// <param name="offloadIfindex">For XDP offload: the device the program is translated for; 0 otherwise.</param>
    public static LoadedProgram Load(EbpfProgram program, IReadOnlyDictionary<MapSpec, BpfMap> maps, uint offloadIfindex = 0)
    {
        var code = program.Encode(maps.ToDictionary(m => m.Key, m => m.Value.Fd.Value), program.Kfuncs.ToDictionary(k => k, Btf.FunctionId));
        uint expectedAttachType = program.ExpectedAttachType;
        int fd = Bpf.ProgLoad((uint)program.Type, code, program.License, program.Name, expectedAttachType, offloadIfindex, 0, null, out _, out var errno);
        if (fd >= 0) return new LoadedProgram(new FileDescriptor(fd));

        var log = new byte[1 << 20];
        while (true)
        {
            int retry = Bpf.ProgLoad((uint)program.Type, code, program.License, program.Name, expectedAttachType, offloadIfindex, 1, log, out var trueSize, out var logErrno);
            if (retry >= 0)
            {
                // Accepted with a log after a refusal without one: not expected, but a loaded program is a loaded program.
                return new LoadedProgram(new FileDescriptor(retry));
            }
            if (logErrno == 28 && trueSize > log.Length && trueSize <= 64u << 20)
            {
                log = new byte[trueSize];
                continue;
            }
            var text = System.Text.Encoding.UTF8.GetString(log, 0, Math.Max(0, Array.IndexOf(log, (byte)0)));
            if (offloadIfindex != 0 && errno is 22 or 95 && text.Trim().Length == 0)
                throw new KernelException($"load program {program.Name} for offload", errno,
                    "the interface's driver cannot run offloaded XDP programs: only SmartNICs with BPF offload (such as Netronome Agilio) can; use mode native or generic",
                    "OffloadUnsupported", FailureCategory.NotImplemented);
            throw new VerifierException(program.Name, errno, text);
        }
    }

    /// <summary>Opens a pinned program, or returns null when nothing is pinned at <paramref name="path"/>.</summary>
    public static LoadedProgram? OpenPinned(string path) => Bpf.ObjGet(path) is { } fd ? new LoadedProgram(fd) : null;

    /// <summary>Opens a loaded program by its kernel id (needs CAP_SYS_ADMIN).</summary>
    public static LoadedProgram OpenById(uint id) => new(Bpf.ProgGetFdById(id));

    public void Pin(string path) => Bpf.ObjPin(Fd, path);

    public ProgramInfo Info()
    {
        Span<byte> info = stackalloc byte[232]; // sizeof(struct bpf_prog_info) on 6.18
        info.Clear();
        Bpf.ObjGetInfo(Fd, info);
        var name = System.Text.Encoding.ASCII.GetString(info.Slice(64, 16)).TrimEnd('\0');
        return new ProgramInfo(
            BinaryPrimitives.ReadUInt32LittleEndian(info[4..]),
            (ProgramType)BinaryPrimitives.ReadUInt32LittleEndian(info),
            name,
            Convert.ToHexString(info.Slice(8, 8)).ToLowerInvariant(),
            BinaryPrimitives.ReadUInt32LittleEndian(info[20..]),
            BinaryPrimitives.ReadUInt32LittleEndian(info[16..]),
            BinaryPrimitives.ReadUInt64LittleEndian(info[40..]));
    }

    /// <summary>Runs the program once on <paramref name="packet"/> (BPF_PROG_TEST_RUN) and returns its return code.</summary>
    public uint TestRun(ReadOnlySpan<byte> packet) => Bpf.ProgTestRun(Fd, packet, 1, out _);

    /// <summary>Runs the program once on <paramref name="packet"/>; <paramref name="output"/> is the packet as it left it.</summary>
    public uint TestRun(ReadOnlySpan<byte> packet, out byte[] output) => Bpf.ProgTestRun(Fd, packet, out output);

    /// <summary>Runs the program <paramref name="repeat"/> times on <paramref name="packet"/>; the kernel's average ns per run.</summary>
    public uint TestRunDuration(ReadOnlySpan<byte> packet, uint repeat)
    {
        Bpf.ProgTestRun(Fd, packet, repeat, out var duration);
        return duration;
    }

    /// <summary>
    /// Runs an XDP program on <paramref name="repeat"/> live frames made from <paramref name="frame"/>: what it
    /// redirects is really sent (a packet generator, as xdp-trafficgen is). False when a signal to the calling
    /// thread ended the run early.
    /// </summary>
    public bool TestRunLiveFrames(ReadOnlySpan<byte> frame, uint repeat, uint batchSize) =>
        Bpf.ProgTestRunLiveFrames(Fd, frame, repeat, batchSize);

    public void Dispose() => Fd.Dispose();
}
