using System.Buffers.Binary;
using System.Text;

namespace Bpfilter.Engine.Kernel;

/// <summary>How many BPF programs, maps and links the kernel holds, and how many fds this process has: for leak checks.</summary>
public sealed record KernelObjectCounts(int Programs, int Maps, int Links, int FileDescriptors)
{
    public static KernelObjectCounts Now() => new(
        Bpf.Ids(BpfCommand.ProgGetNextId).Count, Bpf.Ids(BpfCommand.MapGetNextId).Count, Bpf.Ids(BpfCommand.LinkGetNextId).Count,
        Directory.EnumerateFileSystemEntries("/proc/self/fd").Count());
}

/// <summary>The kinds of kernel object <see cref="KernelObjects"/> enumerates.</summary>
public enum KernelObjectKind
{
    Program,
    Map,
    Link,
}

/// <summary>
/// One BPF object the kernel holds, as the id walk found it. <paramref name="Name"/> is the object name given at load
/// or create time (links have none: ""); <paramref name="ProgramId"/> is a link's program (0 for programs and maps).
/// </summary>
public sealed record KernelObject(KernelObjectKind Kind, uint Id, uint Type, string Name, uint ProgramId)
{
    public override string ToString() => Kind switch
    {
        KernelObjectKind.Link => $"link {Id} (type {Type}, program {ProgramId})",
        _ => $"{Kind.ToString().ToLowerInvariant()} {Id} '{Name}' (type {Type})",
    };
}

/// <summary>
/// Everything a leak check counts at one moment: the kernel's programs, maps and links (system-wide), this process's
/// open fds (fd number → what /proc/self/fd says it is), the pins under a bpffs directory and the named network
/// namespaces (/run/netns).
/// </summary>
public sealed record KernelObjectSnapshot(
    IReadOnlyList<KernelObject> Programs,
    IReadOnlyList<KernelObject> Maps,
    IReadOnlyList<KernelObject> Links,
    IReadOnlyDictionary<int, string> FileDescriptors,
    IReadOnlyList<string> Pins,
    IReadOnlyList<string> NetworkNamespaces)
{
    /// <summary>This process's fds grouped by what they are: "bpf-prog", "bpf-map", "bpf_link", "net", "socket", "pipe", a path ….</summary>
    public IReadOnlyDictionary<string, int> FileDescriptorKinds() => KernelObjects.KindsOf(FileDescriptors);

    /// <summary>Programs, maps and links that are in this snapshot and not in <paramref name="earlier"/> (by kind and id).</summary>
    public IReadOnlyList<KernelObject> ObjectsNotIn(KernelObjectSnapshot earlier)
    {
        var known = earlier.Programs.Concat(earlier.Maps).Concat(earlier.Links).Select(o => (o.Kind, o.Id)).ToHashSet();
        return Programs.Concat(Maps).Concat(Links).Where(o => !known.Contains((o.Kind, o.Id))).ToList();
    }

    public override string ToString() =>
        $"{Programs.Count} programs, {Maps.Count} maps, {Links.Count} links, {FileDescriptors.Count} fds, {Pins.Count} pins, {NetworkNamespaces.Count} named namespaces";
}

/// <summary>
/// Enumerates kernel objects for leak checks: the BPF_{PROG,MAP,LINK}_GET_NEXT_ID walks (CAP_SYS_ADMIN), this
/// process's /proc/self/fd, pins under a bpffs directory and the named network namespaces. Read-only: it changes nothing.
/// </summary>
public static class KernelObjects
{
    /// <summary>Every program id the kernel has, ascending.</summary>
    public static IReadOnlyList<uint> ProgramIds() => Bpf.Ids(BpfCommand.ProgGetNextId);

    /// <summary>Every map id the kernel has, ascending.</summary>
    public static IReadOnlyList<uint> MapIds() => Bpf.Ids(BpfCommand.MapGetNextId);

    /// <summary>Every link id the kernel has, ascending.</summary>
    public static IReadOnlyList<uint> LinkIds() => Bpf.Ids(BpfCommand.LinkGetNextId);

    /// <summary>The kernel's programs with their names and types (ids that vanish during the walk are skipped).</summary>
    public static IReadOnlyList<KernelObject> Programs() => Describe(ProgramIds(), BpfCommand.ProgGetFdById, 232, info => new KernelObject(
        KernelObjectKind.Program, U32(info, 4), U32(info, 0), CString(info.Slice(64, 16)), 0));

    /// <summary>The kernel's maps with their names and types (bpf_map_info: type@0, id@4, name@24).</summary>
    public static IReadOnlyList<KernelObject> Maps() => Describe(MapIds(), BpfCommand.MapGetFdById, 104, info => new KernelObject(
        KernelObjectKind.Map, U32(info, 4), U32(info, 0), CString(info.Slice(24, 16)), 0));

    /// <summary>The kernel's links with their types and programs (bpf_link_info: type@0, id@4, prog_id@8).</summary>
    public static IReadOnlyList<KernelObject> Links() => Describe(LinkIds(), BpfCommand.LinkGetFdById, 64, info => new KernelObject(
        KernelObjectKind.Link, U32(info, 4), U32(info, 0), "", U32(info, 8)));

    /// <summary>
    /// This process's open fds: number → the target of its /proc/self/fd link ("anon_inode:bpf-prog", "net:[4026…]",
    /// a path …). The directory handle the listing itself opens is left out; an fd closed during the listing is skipped.
    /// </summary>
    public static IReadOnlyDictionary<int, string> OpenFileDescriptors()
    {
        var self = $"/proc/{Environment.ProcessId}/fd";
        var result = new SortedDictionary<int, string>();
        foreach (var entry in Directory.GetFileSystemEntries("/proc/self/fd"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var fd)) continue;
            string? target;
            try
            {
                target = new FileInfo(entry).LinkTarget;
            }
            catch (IOException)
            {
                continue;
            }
            if (target is null || target == self) continue;
            result[fd] = target;
        }
        return result;
    }

    /// <summary>How many fds this process has open (the listing's own directory handle not included).</summary>
    public static int OpenFileDescriptorCount() => OpenFileDescriptors().Count;

    /// <summary>Every pin and directory under <paramref name="directory"/>, as paths relative to it, sorted; none when it does not exist.</summary>
    public static IReadOnlyList<string> Pins(string directory)
    {
        if (!Directory.Exists(directory)) return [];
        try
        {
            return Directory.EnumerateFileSystemEntries(directory, "*", SearchOption.AllDirectories)
                .Select(p => Path.GetRelativePath(directory, p)).Order(StringComparer.Ordinal).ToList();
        }
        catch (DirectoryNotFoundException)
        {
            return []; // removed while it was being listed
        }
    }

    /// <summary>The named network namespaces ('ip netns list': the files of /run/netns), sorted.</summary>
    public static IReadOnlyList<string> NetworkNamespaces() =>
        Directory.Exists(NetworkNamespace.NamedDirectory)
            ? Directory.EnumerateFileSystemEntries(NetworkNamespace.NamedDirectory).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>Everything at once; <paramref name="pinDirectory"/> is the bpffs directory whose pins are listed.</summary>
    public static KernelObjectSnapshot Snapshot(string pinDirectory) =>
        new(Programs(), Maps(), Links(), OpenFileDescriptors(), Pins(pinDirectory), NetworkNamespaces());

    /// <summary>
    /// Groups fd targets: anonymous inodes by their name, "net:[…]" and "socket:[…]" by their prefix, paths as they are
    /// (a file replaced on disk while open, such as a rebuilt assembly, is still the same fd: its " (deleted)" is dropped).
    /// </summary>
    internal static IReadOnlyDictionary<string, int> KindsOf(IReadOnlyDictionary<int, string> fds) =>
        fds.Values.GroupBy(t => t switch
        {
            _ when t.StartsWith("anon_inode:", StringComparison.Ordinal) => t["anon_inode:".Length..].Trim('[', ']'),
            _ when t.IndexOf(":[", StringComparison.Ordinal) is > 0 and var i => t[..i],
            _ when t.EndsWith(" (deleted)", StringComparison.Ordinal) => t[..^" (deleted)".Length],
            _ => t,
        }).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());

    private static List<KernelObject> Describe(IReadOnlyList<uint> ids, BpfCommand byId, int infoSize, InfoReader read)
    {
        var result = new List<KernelObject>(ids.Count);
        var info = new byte[infoSize];
        foreach (var id in ids)
        {
            using var fd = Bpf.GetFdById(byId, id);
            if (fd is null) continue;
            Array.Clear(info);
            Bpf.ObjGetInfo(fd, info);
            result.Add(read(info));
        }
        return result;
    }

    private delegate KernelObject InfoReader(ReadOnlySpan<byte> info);

    private static uint U32(ReadOnlySpan<byte> info, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(info[offset..]);

    private static string CString(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        return Encoding.ASCII.GetString(end < 0 ? field : field[..end]);
    }
}
