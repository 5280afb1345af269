using System.Buffers.Binary;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Kernel.Links;

/// <summary>An XDP program attached to one interface through a BPF link (LINK_CREATE, attach type BPF_XDP).</summary>
public sealed class XdpLink : IDisposable
{
    private const uint AttachTypeXdp = 37;
    private const uint SkbMode = 2, DrvMode = 4;
    public const uint LinkTypeXdp = 6;

    private XdpLink(FileDescriptor fd) => Fd = fd;

    public FileDescriptor Fd { get; }

    /// <summary>
    /// Attaches to <paramref name="ifindex"/>, which the kernel resolves in the calling thread's network
    /// namespace: call it inside <see cref="NetworkNamespace.Run{T}"/> for another namespace.
    /// </summary>
    public static XdpLink Attach(LoadedProgram program, uint ifindex, string interfaceName, XdpMode mode)
    {
        try
        {
            return new XdpLink(Bpf.LinkCreate(program.Fd, ifindex, AttachTypeXdp, mode == XdpMode.Generic ? SkbMode : DrvMode,
                $"attach XDP ({mode.ToString().ToLowerInvariant()}) to {interfaceName}"));
        }
        catch (KernelException e) when (e.Errno is 16 or 17)
        {
            throw new KernelException(e.Operation, e.Errno,
                "another XDP program is already attached to this interface (see 'ip link show'); detach it first", "InterfaceBusy");
        }
    }

    public static XdpLink? OpenPinned(string path) => Bpf.ObjGet(path) is { } fd ? new XdpLink(fd) : null;

    public void Pin(string path) => Bpf.ObjPin(Fd, path);

    /// <summary>Replaces the attached program in one step: no packet meets the interface without a program.</summary>
    public void Update(FileDescriptor nextProgram, FileDescriptor? expectedCurrent = null)
    {
        try
        {
            Bpf.LinkUpdate(Fd, nextProgram, expectedCurrent);
        }
        catch (KernelException e) when (e.Errno == 67)
        {
            throw new KernelException(e.Operation, e.Errno, "the link is defunct: its interface was removed", "LinkDefunct");
        }
    }

    public void Detach() => Bpf.LinkDetach(Fd);

    /// <summary>(link id, attached program id, ifindex; 0 when the interface is gone).</summary>
    public (uint LinkId, uint ProgramId, uint Ifindex) Info()
    {
        Span<byte> info = stackalloc byte[64]; // struct bpf_link_info: type@0 id@4 prog_id@8 xdp.ifindex@16
        info.Clear();
        Bpf.ObjGetInfo(Fd, info);
        return (BinaryPrimitives.ReadUInt32LittleEndian(info[4..]), BinaryPrimitives.ReadUInt32LittleEndian(info[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(info[16..]));
    }

    public void Dispose() => Fd.Dispose();
}
