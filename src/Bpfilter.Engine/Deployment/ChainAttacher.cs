using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Rules;

namespace Bpfilter.Engine.Deployment;

/// <summary>
/// Attaches a loaded program where a manifest chain says: one link for XDP, TCX and cgroup, two for netfilter
/// (IPv4 and IPv6). Links are made inside the chain's network namespace and pinned at the chain's link pins.
/// </summary>
internal static class ChainAttacher
{
    public static IReadOnlyList<BpfLink> Attach(string deployment, ManifestChain chain, LoadedProgram program)
    {
        var links = NetworkNamespace.Run(chain.NetworkNamespace, () => Create(chain, program));
        try
        {
            for (int i = 0; i < links.Count; i++) links[i].Pin(DeploymentPaths.Pin(deployment, chain.LinkPins[i]));
            return links;
        }
        catch
        {
            foreach (var link in links)
            {
                link.Detach();
                link.Dispose();
            }
            throw;
        }
    }

    /// <summary>The pins a chain's links get at <paramref name="generation"/>.</summary>
    public static IReadOnlyList<string> LinkPins(string chain, Hook hook, long generation) =>
        hook.IsNetfilter() ? [$"{chain}-link-{generation}", $"{chain}-link6-{generation}"] : [$"{chain}-link-{generation}"];

    private static IReadOnlyList<BpfLink> Create(ManifestChain chain, LoadedProgram program)
    {
        switch (chain.Hook)
        {
            case Hook.Xdp:
                return [XdpLink.Attach(program, Interfaces.IndexOf(chain.Target!, chain.NetworkNamespace), chain.Target!, chain.Mode)];
            case Hook.TcIngress or Hook.TcEgress:
                return [TcxLink.Attach(program, Interfaces.IndexOf(chain.Target!, chain.NetworkNamespace), chain.Target!, chain.Hook == Hook.TcEgress, chain.Order)];
            case Hook.CgroupIngress or Hook.CgroupEgress:
                return [CgroupLink.Attach(program, chain.Target!, chain.Hook == Hook.CgroupEgress)];
            default:
                var v4 = NetfilterLink.Attach(program, chain.Hook, NetfilterLink.FamilyIpv4, chain.Priority!.Value);
                try
                {
                    return [v4, NetfilterLink.Attach(program, chain.Hook, NetfilterLink.FamilyIpv6, chain.Priority!.Value)];
                }
                catch
                {
                    v4.Detach();
                    v4.Dispose();
                    throw;
                }
        }
    }
}
