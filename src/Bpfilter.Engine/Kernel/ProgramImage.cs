using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Bpfilter.Engine.Ebpf;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// A loaded program as the kernel holds it: its translated ("xlated") instructions, after the verifier's rewrites
/// (context loads widened, per-CPU map lookups inlined, helper ids turned into call addresses), and the ids of the
/// maps it uses. Read with two BPF_OBJ_GET_INFO_BY_FD calls: one for the sizes, one with buffers of those sizes.
/// </summary>
public sealed unsafe class ProgramImage
{
    private const int InfoSize = 232; // sizeof(struct bpf_prog_info) on 6.18
    private const int XlatedLenOffset = 20, XlatedInsnsOffset = 32, MapCountOffset = 52, MapIdsOffset = 56;

    private KernelSymbols? _symbols;

    private ProgramImage(ProgramInfo info, IReadOnlyList<Instruction> instructions, IReadOnlyList<uint> mapIds)
    {
        Info = info;
        Instructions = instructions;
        MapIds = mapIds;
    }

    public ProgramInfo Info { get; }

    /// <summary>The translated instructions, every map load carrying a map id (BPF_PSEUDO_MAP_FD with imm = id).</summary>
    public IReadOnlyList<Instruction> Instructions { get; }

    /// <summary>The ids of the maps the program uses, as the kernel lists them.</summary>
    public IReadOnlyList<uint> MapIds { get; }

    public static ProgramImage Read(LoadedProgram program) => Read(program.Fd);

    /// <summary>Reads the image of the program behind <paramref name="program"/>.</summary>
    public static ProgramImage Read(FileDescriptor program)
    {
        // Pass 1: a zeroed info learns the sizes. Pass 2 must start from zero again: pass 1 filled in jited_prog_len
        // and other counts, and the kernel would copy into their (null) buffers.
        Span<byte> info = stackalloc byte[InfoSize];
        info.Clear();
        Bpf.ObjGetInfo(program, info);
        uint xlatedBytes = U32(info, XlatedLenOffset);
        uint mapCount = U32(info, MapCountOffset);
        if (xlatedBytes == 0)
            throw new BpfilterException("ProgramImageUnavailable", FailureCategory.PermissionDenied,
                $"the kernel shows no instructions of program {U32(info, 4)}: reading a program's image needs CAP_BPF (run PowerShell as root)");

        var code = new byte[xlatedBytes];
        var maps = new uint[mapCount];
        info.Clear();
        fixed (byte* codeBuffer = code)
        fixed (uint* mapBuffer = maps)
        {
            W32(info, XlatedLenOffset, xlatedBytes);
            W64(info, XlatedInsnsOffset, (ulong)codeBuffer);
            W32(info, MapCountOffset, mapCount);
            W64(info, MapIdsOffset, mapCount == 0 ? 0 : (ulong)mapBuffer);
            Bpf.ObjGetInfo(program, info);
        }
        // A program is immutable once loaded: the sizes of pass 2 are those of pass 1.
        int copied = (int)Math.Min(xlatedBytes, U32(info, XlatedLenOffset)) / Instruction.Size;
        var instructions = new Instruction[copied];
        for (int i = 0; i < copied; i++) instructions[i] = Instruction.ReadFrom(code.AsSpan(i * Instruction.Size));
        int mapsCopied = (int)Math.Min(mapCount, U32(info, MapCountOffset));
        return new ProgramImage(ParseInfo(info), instructions, maps.Take(mapsCopied).ToArray());
    }

    /// <summary>Opening a program by id needs CAP_SYS_ADMIN; reading its instructions, CAP_BPF.</summary>
    public static readonly int[] ByIdCapabilities = [Privileges.CapBpf, Privileges.CapSysAdmin];

    /// <summary>Reads the image of loaded program <paramref name="id"/>.</summary>
    public static ProgramImage ReadById(uint id)
    {
        Privileges.Require(ByIdCapabilities, "Reading a loaded program by id");
        FileDescriptor fd;
        try
        {
            fd = Bpf.ProgGetFdById(id);
        }
        catch (KernelException e) when (e.Errno == 2)
        {
            throw new KernelException(e.Operation, e.Errno, "no program with this id is loaded (it was unloaded or replaced)", "ProgramNotFound",
                FailureCategory.ObjectNotFound);
        }
        using (fd) return Read(fd);
    }

    /// <summary>
    /// How to read this image: map loads carry map ids, and calls carry addresses relative to <c>__bpf_call_base</c>,
    /// named from /proc/kallsyms as bpftool does (read once, the first time a call is named).
    /// </summary>
    public DisassemblyOptions DisassemblyOptions => new()
    {
        MapImmediate = MapImmediate.Id,
        CallName = insn => (_symbols ??= KernelSymbols.Load()).NameOfCall(insn.Immediate),
    };

    public IReadOnlyList<DisassembledInstruction> Disassemble() => Disassembler.Disassemble(Instructions, DisassemblyOptions);

    /// <summary>The image as listing lines, all under one region that names the program as 'bpftool prog show' does: "xlated, id 42 tag d6c4c6a124243281".</summary>
    public IEnumerable<ProgramLine> Listing(string deployment, string chain) =>
        ProgramListing.Of(deployment, chain, $"xlated, id {Info.Id} tag {Info.Tag}", Instructions, DisassemblyOptions);

    private static ProgramInfo ParseInfo(ReadOnlySpan<byte> info) => new(
        U32(info, 4),
        (ProgramType)U32(info, 0),
        Encoding.ASCII.GetString(info.Slice(64, 16)).TrimEnd('\0'),
        Convert.ToHexString(info.Slice(8, 8)).ToLowerInvariant(),
        U32(info, 20),
        U32(info, 16),
        BinaryPrimitives.ReadUInt64LittleEndian(info[40..]));

    private static uint U32(ReadOnlySpan<byte> info, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(info[offset..]);
    private static void W32(Span<byte> info, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(info[offset..], value);
    private static void W64(Span<byte> info, int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(info[offset..], value);

    /// <summary>Kernel function addresses from /proc/kallsyms, for naming the calls of a translated image.</summary>
    private sealed class KernelSymbols
    {
        private readonly ulong _callBase;
        private readonly Dictionary<ulong, string> _functions;

        private KernelSymbols(ulong callBase, Dictionary<ulong, string> functions)
        {
            _callBase = callBase;
            _functions = functions;
        }

        public static KernelSymbols Load()
        {
            ulong callBase = 0;
            var functions = new Dictionary<ulong, string>();
            try
            {
                foreach (var line in File.ReadLines("/proc/kallsyms"))
                {
                    // "ffffffff81521410 T bpf_map_lookup_elem" (modules add "\t[module]")
                    int first = line.IndexOf(' ');
                    if (first <= 0 || line.Length < first + 4 || line[first + 2] != ' ') continue;
                    char type = line[first + 1];
                    if (type is not ('t' or 'T')) continue;
                    if (!ulong.TryParse(line.AsSpan(0, first), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var address) || address == 0) continue;
                    var rest = line.AsSpan(first + 3);
                    int end = rest.IndexOfAny('\t', ' ');
                    var name = (end < 0 ? rest : rest[..end]).ToString();
                    if (name == "__bpf_call_base") callBase = address;
                    functions.TryAdd(address, name);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // No symbols: calls keep their raw immediates.
            }
            return new KernelSymbols(callBase, functions);
        }

        /// <summary>The function at __bpf_call_base + <paramref name="immediate"/>, or its address; "unknown" without symbols.</summary>
        public string NameOfCall(int immediate)
        {
            if (_callBase == 0) return "unknown";
            ulong address = unchecked(_callBase + (ulong)(long)immediate);
            return _functions.TryGetValue(address, out var name) ? name : $"0x{address:x}";
        }
    }
}
