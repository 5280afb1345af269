using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Bpfilter.Engine.Deployment;
using Bpfilter.Engine.Ebpf;
using Bpfilter.Engine.Kernel;
using Bpfilter.Engine.Kernel.Links;
using Bpfilter.Engine.Kernel.Native;
using Bpfilter.Engine.Rules;
using Xunit;

namespace Bpfilter.Engine.Tests;

/// <summary>
/// What a deployment on disk may be trusted for: modes set whatever the umask, manifests that were changed, cut short
/// or made up are refused (and still unpublished), directories and pins of another owner, writable by others, or
/// replaced by symbolic links are refused, and unpublishing never follows a link out of its directory.
/// </summary>
[Collection("kernel")]
public sealed partial class KernelTrustTests : IDisposable
{
    private const int SlotBytes = 4096;
    private const uint ManifestMagic = 0x4d465042;
    private readonly Sandbox _sandbox = new();
    private readonly string _deployment;
    private readonly string _other;

    public KernelTrustTests()
    {
        _deployment = $"bpft-{_sandbox.Id}";
        _other = $"bpft-{_sandbox.Id}b";
    }

    public void Dispose()
    {
        foreach (var name in new[] { _deployment, _other })
        {
            var directory = DeploymentPaths.Directory(name);
            if (Directory.Exists(directory) || PrivatePaths.IsSymbolicLink(directory)) Deployments.Unpublish(name);
            File.Delete(DeploymentPaths.Lock(name));
        }
        _sandbox.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Lchown(string path, uint owner, uint group);

    private Ruleset Rules(string name, Hook hook = Hook.Xdp, int? priority = null, ushort port = 9999) =>
        new(name, [new Chain("INPUT", hook, hook == Hook.NfInput ? null : _sandbox.ReceiverInterface, Verdict.Accept,
            [new Rule("drop-port", Matches.Simple(protocol: IpProtocol.Udp, destinationPort: port), Verdict.Drop)], priority: priority)]);

    private DeploymentInfo Publish(string name, Hook hook = Hook.Xdp, int? priority = null, ushort port = 9999) =>
        Publisher.Publish(Rules(name, hook, priority, port), new PublishOptions(_sandbox.Receiver));

    private static (uint Mode, uint Owner) ModeOf(string path)
    {
        Assert.Equal(0, LibC.Lstat(path, out var mode, out var owner));
        return (mode & 0xfff, owner);
    }

    private static BpfilterException Refused(string errorId, FailureCategory category, Action action)
    {
        var error = Assert.ThrowsAny<BpfilterException>(action);
        Assert.Equal((errorId, category), (error.ErrorId, error.Category));
        return error;
    }

    /// <summary>Every way to read the deployment refuses it, a publish over it changes nothing, and unpublishing removes it and its link.</summary>
    private void AssertRefusedButRemovable(string errorId, FailureCategory category, DeploymentInfo published, string because)
    {
        Assert.Contains(because, Refused(errorId, category, () => Deployments.Get(_deployment)).Message);
        Refused(errorId, category, () => Deployments.Counters(_deployment));
        Refused(errorId, category, () => Deployments.Programs(_deployment));
        Refused(errorId, category, () => Publish(_deployment, port: 8888));
        var linkId = published.Chains.Single().LinkIds.Single();
        Assert.Equal(published.Chains.Single().ProgramId, KernelObjects.Links().Single(l => l.Id == linkId).ProgramId);

        Deployments.Unpublish(_deployment);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
        AssertLinkFreed(linkId);
    }

    /// <summary>The kernel frees a detached link once its last reference goes, which may be a moment after the pin (and another process's id walk).</summary>
    private static void AssertLinkFreed(uint linkId)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (KernelObjects.LinkIds().Contains(linkId) && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.DoesNotContain(linkId, KernelObjects.LinkIds());
    }

    [Theory]
    [InlineData(0x0u)]  // 000: would leave new directories open to everyone
    [InlineData(0xbfu)] // 277: would leave pins and directories without write access for root itself
    public void Directories_are_0700_and_pins_and_locks_0600_whatever_the_umask_and_after_a_republish(uint umask)
    {
        var old = Umask(umask);
        try
        {
            Publish(_deployment);
            Publish(_deployment, port: 8888); // the manifest is renamed into place, the program and counters are new pins
        }
        finally
        {
            Umask(old);
        }
        foreach (var directory in new[] { DeploymentPaths.Root, DeploymentPaths.Directory(_deployment), DeploymentPaths.LockDirectory })
            Assert.Equal((0x1c0u, 0u), ModeOf(directory));
        var pins = Directory.GetFiles(DeploymentPaths.Directory(_deployment));
        Assert.Equal(["INPUT-counters-2", "INPUT-link-1", "INPUT-prog-2", "manifest"], pins.Select(Path.GetFileName).Order());
        foreach (var pin in pins.Append(DeploymentPaths.Lock(_deployment)))
            Assert.True(ModeOf(pin) == (0x180u, 0u), $"{pin} is {Convert.ToString(ModeOf(pin).Mode, 8)}, owner {ModeOf(pin).Owner}");
    }

    [Fact]
    public void A_directory_an_earlier_publisher_left_readable_by_others_is_made_private()
    {
        Directory.CreateDirectory(DeploymentPaths.Directory(_deployment));
        PrivatePaths.Restrict(DeploymentPaths.Directory(_deployment), 0x1ed); // 0755
        Publish(_deployment);
        Assert.Equal(0x1c0u, ModeOf(DeploymentPaths.Directory(_deployment)).Mode);
    }

    public static TheoryData<string, string> Corruptions => new()
    {
        { "flipped", "its checksum does not match its content" },
        { "truncated", "it is truncated" },
        { "no-header", "its header is missing" },
        { "zero-length", "its length is out of range" },
        { "wrong-shape", "its map has the wrong shape" },
        { "foreign", "is not one this module wrote" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void A_manifest_that_was_changed_or_cut_short_is_refused_and_still_unpublished(string corruption, string because)
    {
        var published = Publish(_deployment);
        var slots = ManifestSlots(_deployment);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(slots[0].AsSpan(4));
        switch (corruption)
        {
            case "flipped":
                slots[1][length / 2] ^= 0x01;
                ReplaceManifest(_deployment, slots);
                break;
            case "truncated":
                ReplaceManifest(_deployment, slots[..^1]);
                break;
            case "no-header":
                Array.Clear(slots[0]);
                ReplaceManifest(_deployment, slots);
                break;
            case "zero-length":
                BinaryPrimitives.WriteUInt32LittleEndian(slots[0].AsSpan(4), 0);
                ReplaceManifest(_deployment, slots);
                break;
            case "wrong-shape":
                ReplaceManifest(_deployment, slots.Select(s => s[..64]).ToArray(), valueSize: 64);
                break;
            case "foreign":
                // A consistent header over JSON this module never wrote: the checksum agrees, the content does not.
                ReplaceManifest(_deployment, Slots(Encoding.UTF8.GetBytes("""{"format":1,"name":"someone-else","chains":[]}""")));
                break;
        }
        AssertRefusedButRemovable("ManifestCorrupt", FailureCategory.InvalidData, published, because);
    }

    [Fact]
    public void A_deployment_directory_others_can_write_is_refused_and_still_unpublished()
    {
        var published = Publish(_deployment);
        PrivatePaths.Restrict(DeploymentPaths.Directory(_deployment), 0x1ff); // 0777
        AssertRefusedButRemovable("PathUntrusted", FailureCategory.SecurityError, published, "can be written by every user (mode 777)");
    }

    [Fact]
    public void A_manifest_of_another_owner_is_refused_and_still_unpublished()
    {
        var published = Publish(_deployment);
        Assert.Equal(0, Lchown(DeploymentPaths.Pin(_deployment, DeploymentPaths.ManifestPin), 65534, 65534));
        AssertRefusedButRemovable("PathUntrusted", FailureCategory.SecurityError, published, "belongs to user 65534, not root");
    }

    [Fact]
    public void A_manifest_replaced_by_a_symbolic_link_is_refused_and_unpublishing_leaves_the_link_target_alone()
    {
        var other = Publish(_other, Hook.TcIngress);
        var published = Publish(_deployment);
        var manifest = DeploymentPaths.Pin(_deployment, DeploymentPaths.ManifestPin);
        File.Delete(manifest);
        File.CreateSymbolicLink(manifest, DeploymentPaths.Pin(_other, DeploymentPaths.ManifestPin));
        // A link among the pins pointing at the other deployment's link: unpublishing must remove it, not detach what it names.
        File.CreateSymbolicLink(DeploymentPaths.Pin(_deployment, "INPUT-link-9"), DeploymentPaths.Pin(_other, "INPUT-link-1"));

        AssertRefusedButRemovable("PathUntrusted", FailureCategory.SecurityError, published, "is a symbolic link");
        var survivor = Deployments.Get(_other);
        Assert.Equal(ChainState.Attached, survivor.Chains.Single().State);
        Assert.Contains(other.Chains.Single().LinkIds.Single(), KernelObjects.LinkIds());
    }

    [Fact]
    public void A_deployment_directory_that_is_a_symbolic_link_is_removed_as_a_link()
    {
        Publish(_other);
        File.CreateSymbolicLink(DeploymentPaths.Directory(_deployment), DeploymentPaths.Directory(_other));
        Refused("PathUntrusted", FailureCategory.SecurityError, () => Deployments.Get(_deployment));
        Deployments.Unpublish(_deployment);
        Assert.False(PrivatePaths.IsSymbolicLink(DeploymentPaths.Directory(_deployment)));
        Assert.Equal(ChainState.Attached, Deployments.Get(_other).Chains.Single().State);
    }

    [Fact]
    public void The_checks_refuse_links_other_owners_and_write_access_for_others_and_pass_a_private_directory()
    {
        var scratch = Path.Combine(Path.GetTempPath(), $"bpft-{_sandbox.Id}-paths");
        Directory.CreateDirectory(scratch);
        try
        {
            var good = Path.Combine(scratch, "good");
            PrivatePaths.EnsureDirectory(good, "remedy");
            Assert.Equal((0x1c0u, 0u), ModeOf(good));
            PrivatePaths.Check(Path.Combine(scratch, "missing"), directory: true, "remedy"); // nothing there: nothing to trust

            var foreign = Path.Combine(scratch, "foreign");
            Directory.CreateDirectory(foreign);
            Assert.Equal(0, Lchown(foreign, 65534, 65534));
            var group = Path.Combine(scratch, "group");
            Directory.CreateDirectory(group);
            PrivatePaths.Restrict(group, 0x1f8); // 0770
            var link = Path.Combine(scratch, "link");
            File.CreateSymbolicLink(link, good);
            var file = Path.Combine(scratch, "file");
            File.WriteAllText(file, "");

            foreach (var (path, because) in new[] { (foreign, "belongs to user 65534"), (group, "can be written by its group (mode 770)"),
                         (link, "is a symbolic link"), (file, "is not a directory") })
            {
                var error = Refused("PathUntrusted", FailureCategory.SecurityError, () => PrivatePaths.Check(path, directory: true, "do this"));
                Assert.Contains($"{path} {because}", error.Message);
                Assert.EndsWith("do this", error.Message);
                // Making such a directory private is refused as well: it was someone else's first.
                if (path != file) Refused("PathUntrusted", FailureCategory.SecurityError, () => PrivatePaths.EnsureDirectory(path, "do this"));
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    [Fact]
    public void A_counter_pin_that_is_gone_is_DeploymentIncomplete()
    {
        Publish(_deployment);
        File.Delete(DeploymentPaths.Pin(_deployment, "INPUT-counters-1"));
        Assert.Contains("INPUT-counters-1", Refused("DeploymentIncomplete", FailureCategory.InvalidData, () => Deployments.Counters(_deployment)).Message);
    }

    [Fact]
    public void A_half_published_plan_whose_program_is_gone_is_RecoveryFailed_and_still_unpublished()
    {
        Publish(_deployment);
        var manifest = ManifestStore.Read(_deployment)!;
        var plan = manifest with
        {
            Generation = 2,
            Chains = manifest.Chains.Select(c => c with { ProgramPin = "INPUT-prog-2", CountersPin = "INPUT-counters-2" }).ToList(),
        };
        Publisher.WriteManifest(_deployment, plan, DeploymentPaths.NextManifestPin);

        var error = Refused("RecoveryFailed", FailureCategory.InvalidOperation, () => Deployments.Get(_deployment));
        Assert.Equal("DeploymentIncomplete", Assert.IsAssignableFrom<BpfilterException>(error.InnerException).ErrorId);
        Deployments.Unpublish(_deployment);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
    }

    [Fact]
    public void Updating_a_link_whose_interface_is_gone_is_LinkDefunct()
    {
        var published = Publish(_deployment);
        Sandbox.Ip("-n", _sandbox.Receiver, "link", "del", _sandbox.ReceiverInterface);
        using var link = BpfLink.OpenPinned(DeploymentPaths.Pin(_deployment, "INPUT-link-1"))!;
        using var program = LoadedProgram.OpenPinned(DeploymentPaths.Pin(_deployment, "INPUT-prog-1"))!;
        Refused("LinkDefunct", FailureCategory.ResourceUnavailable, () => link.Update(program.Fd));
        Assert.Equal(ChainState.InterfaceGone, Deployments.Get(published.Name).Chains.Single().State);
    }

    [Fact]
    public void A_second_XDP_program_on_one_interface_is_InterfaceBusy_and_leaves_nothing()
    {
        Publish(_deployment);
        Assert.Contains("already attached", Refused("InterfaceBusy", FailureCategory.ResourceBusy, () => Publish(_other)).Message);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_other)));
    }

    [Fact]
    public void A_second_netfilter_program_at_the_same_priority_is_PriorityBusy_and_leaves_nothing()
    {
        Publish(_deployment, Hook.NfInput, priority: 7);
        Assert.Contains("priority 7", Refused("PriorityBusy", FailureCategory.ResourceBusy, () => Publish(_other, Hook.NfInput, priority: 7)).Message);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_other)));
    }

    [Fact]
    public void A_lock_held_past_the_timeout_is_DeploymentLocked()
    {
        using var held = FileLock.Acquire(DeploymentPaths.Lock(_deployment), TimeSpan.Zero);
        Refused("DeploymentLocked", FailureCategory.ResourceBusy, () => FileLock.Acquire(DeploymentPaths.Lock(_deployment), TimeSpan.FromMilliseconds(50)));
        Assert.Null(FileLock.TryAcquire(DeploymentPaths.Lock(_deployment)));
    }

    [Fact]
    public void A_lock_file_replaced_by_a_symbolic_link_is_not_followed()
    {
        var target = Path.Combine(Path.GetTempPath(), $"bpft-{_sandbox.Id}-target");
        FileLock.Acquire(DeploymentPaths.Lock(_deployment), TimeSpan.Zero).Dispose(); // makes the lock directory
        File.Delete(DeploymentPaths.Lock(_deployment));
        File.CreateSymbolicLink(DeploymentPaths.Lock(_deployment), target);
        try
        {
            var error = Refused("PathUntrusted", FailureCategory.SecurityError, () => FileLock.Acquire(DeploymentPaths.Lock(_deployment), TimeSpan.Zero));
            Assert.Contains("is a symbolic link", error.Message);
            Assert.False(File.Exists(target));
        }
        finally
        {
            File.Delete(DeploymentPaths.Lock(_deployment));
        }
    }

    [Fact]
    public void An_interface_name_full_of_shell_syntax_is_only_looked_up()
    {
        var ruleset = new Ruleset(_deployment, [new Chain("INPUT", Hook.Xdp, "x$(id)`id`;|&", Verdict.Accept, [])]);
        Assert.Contains("there is no interface 'x$(id)`id`;|&'",
            Refused("InterfaceNotFound", FailureCategory.ObjectNotFound, () => Publisher.Publish(ruleset, new PublishOptions(_sandbox.Receiver))).Message);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
    }

    [Theory]
    [InlineData("/etc", "is not a cgroup directory")]
    [InlineData("bpft-no-such-cgroup", "there is no cgroup directory")]
    public void A_cgroup_outside_the_hierarchy_or_missing_is_CgroupNotFound_and_leaves_nothing(string cgroup, string because)
    {
        var ruleset = new Ruleset(_deployment, [new Chain("INPUT", Hook.CgroupIngress, null, Verdict.Accept, [], cgroup: cgroup)]);
        Assert.Contains(because, Refused("CgroupNotFound", FailureCategory.ObjectNotFound, () => Publisher.Publish(ruleset, new PublishOptions())).Message);
        Assert.False(Directory.Exists(DeploymentPaths.Directory(_deployment)));
    }

    /// <summary>Every slot of the pinned manifest map, header first.</summary>
    private static byte[][] ManifestSlots(string deployment)
    {
        using var map = BpfMap.OpenPinned(DeploymentPaths.Pin(deployment, DeploymentPaths.ManifestPin), readOnly: true)!;
        var slots = new List<byte[]>();
        var key = new byte[4];
        while (true)
        {
            var slot = new byte[SlotBytes];
            BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)slots.Count);
            if (!map.Lookup(key, slot)) return slots.ToArray();
            slots.Add(slot);
        }
    }

    /// <summary>A header (magic, length, SHA-256) and data slots for <paramref name="json"/>, as ManifestStore lays them out.</summary>
    private static byte[][] Slots(byte[] json)
    {
        var header = new byte[SlotBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(header, ManifestMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(4), (uint)json.Length);
        SHA256.HashData(json, header.AsSpan(8, 32));
        var data = json.Chunk(SlotBytes).Select(chunk =>
        {
            var slot = new byte[SlotBytes];
            chunk.CopyTo(slot, 0);
            return slot;
        });
        return [header, .. data];
    }

    /// <summary>Pins a new map holding <paramref name="slots"/> over the deployment's manifest, as someone with root could.</summary>
    private static void ReplaceManifest(string deployment, byte[][] slots, uint valueSize = SlotBytes)
    {
        using var map = BpfMap.Create(new MapSpec("bpft_mf", MapType.Array, 4, valueSize, (uint)slots.Length));
        var key = new byte[4];
        for (int i = 0; i < slots.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)i);
            map.Update(key, slots[i]);
        }
        var temporary = DeploymentPaths.Pin(deployment, "bpft-tampered");
        map.Pin(temporary);
        BpfFs.Rename(temporary, DeploymentPaths.Pin(deployment, DeploymentPaths.ManifestPin));
    }
}
