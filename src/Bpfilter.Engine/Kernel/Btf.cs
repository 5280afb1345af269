using System.Buffers.Binary;
using System.Text;

namespace Bpfilter.Engine.Kernel;

/// <summary>
/// Reads the running kernel's BTF (/sys/kernel/btf/vmlinux) for the ids of kernel functions (kfuncs), which
/// differ from build to build. Parsed once, on first use: nothing reads it at import.
/// </summary>
public static class Btf
{
    public const string VmlinuxPath = "/sys/kernel/btf/vmlinux";
    private const int KindFunc = 12;
    private static readonly Lazy<IReadOnlyDictionary<string, int>> Functions = new(() => ReadFunctions(File.ReadAllBytes(VmlinuxPath)));

    /// <summary>The BTF type id of the FUNC named <paramref name="name"/>.</summary>
    public static int FunctionId(string name)
    {
        IReadOnlyDictionary<string, int> functions;
        try
        {
            functions = Functions.Value;
        }
        catch (IOException e)
        {
            throw new BpfilterException("BtfUnavailable", FailureCategory.ResourceUnavailable,
                $"cannot read {VmlinuxPath} ({e.Message}): netfilter programs need the kernel's BTF (CONFIG_DEBUG_INFO_BTF)", e);
        }
        return functions.TryGetValue(name, out var id) ? id
            : throw new BpfilterException("KfuncMissing", FailureCategory.NotImplemented,
                $"this kernel has no function {name} (not in {VmlinuxPath}); it needs Linux 6.4 or later");
    }

    /// <summary>Walks every type record (ids from 1, in file order) and keeps the FUNC names.</summary>
    internal static IReadOnlyDictionary<string, int> ReadFunctions(ReadOnlySpan<byte> btf)
    {
        if (BinaryPrimitives.ReadUInt16LittleEndian(btf) != 0xEB9F) throw new InvalidDataException("not BTF: wrong magic");
        uint headerLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[4..]);
        uint typeOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[8..]);
        uint typeLength = BinaryPrimitives.ReadUInt32LittleEndian(btf[12..]);
        uint stringOffset = BinaryPrimitives.ReadUInt32LittleEndian(btf[16..]);
        var types = btf.Slice((int)(headerLength + typeOffset), (int)typeLength);
        var strings = btf[(int)(headerLength + stringOffset)..];
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        int position = 0, id = 1;
        while (position + 12 <= types.Length)
        {
            uint nameOffset = BinaryPrimitives.ReadUInt32LittleEndian(types[position..]);
            uint info = BinaryPrimitives.ReadUInt32LittleEndian(types[(position + 4)..]);
            int kind = (int)((info >> 24) & 0x1f);
            int vlen = (int)(info & 0xffff);
            if (kind == KindFunc)
            {
                var name = strings[(int)nameOffset..];
                result.TryAdd(Encoding.ASCII.GetString(name[..name.IndexOf((byte)0)]), id);
            }
            position += 12 + kind switch
            {
                1 => 4,                 // INT
                3 => 12,                // ARRAY
                4 or 5 => 12 * vlen,    // STRUCT, UNION
                6 => 8 * vlen,          // ENUM
                13 => 8 * vlen,         // FUNC_PROTO
                14 => 4,                // VAR
                15 => 12 * vlen,        // DATASEC
                17 => 4,                // DECL_TAG
                19 => 12 * vlen,        // ENUM64
                _ => 0,                 // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            };
            id++;
        }
        return result;
    }
}
