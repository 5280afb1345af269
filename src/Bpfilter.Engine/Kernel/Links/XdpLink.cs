using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Kernel.Links;

/// <summary>XDP on one interface (LINK_CREATE, attach type BPF_XDP, one mode flag).</summary>
public sealed class XdpLink : BpfLink
{
    private const uint AttachTypeXdp = 37;
    private const uint SkbMode = 2, DrvMode = 4, HwMode = 8;

    private XdpLink(FileDescriptor fd) : base(fd) { }

    /// <summary>The kernel resolves <paramref name="ifindex"/> in the calling thread's network namespace.</summary>
    public static XdpLink Attach(LoadedProgram program, uint ifindex, string interfaceName, XdpMode mode)
    {
        uint flags = mode switch { XdpMode.Generic => SkbMode, XdpMode.Offload => HwMode, _ => DrvMode };
        try
        {
            return new XdpLink(Bpf.LinkCreate(program.Fd, ifindex, AttachTypeXdp, flags,
                $"attach XDP ({mode.ToString().ToLowerInvariant()}) to {interfaceName}"));
        }
        catch (KernelException e) when (e.Errno is 16 or 17)
        {
            throw new KernelException(e.Operation, e.Errno,
                "another XDP program is already attached to this interface (see 'ip link show'); detach it first", "InterfaceBusy", FailureCategory.ResourceBusy);
        }
    }
}
