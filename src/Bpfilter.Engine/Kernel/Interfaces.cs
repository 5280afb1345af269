using Bpfilter.Engine.Kernel.Native;

namespace Bpfilter.Engine.Kernel;

/// <summary>Network interfaces of the calling thread's network namespace.</summary>
public static class Interfaces
{
    /// <summary>The ifindex of <paramref name="name"/>; call inside <see cref="NetworkNamespace.Run{T}"/> for another namespace.</summary>
    public static uint IndexOf(string name, string? networkNamespace)
    {
        uint index = LibC.IfNameToIndex(name);
        if (index != 0) return index;
        throw new BpfilterException("InterfaceNotFound", FailureCategory.ObjectNotFound,
            $"there is no interface '{name}' in " + (networkNamespace is null ? "this network namespace" : $"network namespace '{networkNamespace}'")
            + (networkNamespace is null ? " (use -NetworkNamespace for an interface inside a namespace)" : ""));
    }
}
