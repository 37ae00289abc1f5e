# Install layout and the Debian package.
#
#   cmake --install build [--prefix P]      binary, systemd unit, policy, docs, man page
#   cpack --config build/CPackConfig.cmake  build/xdpguard_<version>_<arch>.deb
#
# A system daemon installs into the system: the prefix defaults to /usr, not
# /usr/local, so that the unit's ExecStart, the package and a plain install
# agree. The policy is a configuration file and always goes to /etc/xdpguard,
# whatever the prefix (DESTDIR still applies).

# Installing and packaging take what was built (`cmake --build` first); they
# do not build the whole tree (tests, benchmarks) on their own: cpack's
# "preinstall" step would otherwise rebuild everything.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix" FORCE)
endif()
include(GNUInstallDirs)

set(XDPGUARD_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)
set(XDPGUARD_CONF_DIR /etc/xdpguard)

# The unit names the binary by its absolute path; the source copy says
# /usr/sbin, rewritten here for another prefix.
set(unit_src ${XDPGUARD_DEPLOY_DIR}/xdpguard@.service)
set(unit_out ${PROJECT_BINARY_DIR}/deploy/xdpguard@.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${unit_src})
file(READ ${unit_src} unit_text)
string(REPLACE "/usr/sbin/xdpguard" "${CMAKE_INSTALL_FULL_SBINDIR}/xdpguard" unit_text "${unit_text}")
file(CONFIGURE OUTPUT ${unit_out} CONTENT "${unit_text}" @ONLY)

# systemd looks in <prefix>/lib/systemd/system for /usr and /usr/local.
install(FILES ${unit_out} DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/policy/ovoc-single-node.yaml
        DESTINATION ${XDPGUARD_CONF_DIR} RENAME policy.yaml
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(GLOB doc_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${doc_files}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${XDPGUARD_DEPLOY_DIR}/xdpguard.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# --- CPack: one .deb ---------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME xdpguard)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "xdpguard maintainers <xdpguard@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "XDP/eBPF host firewall agent for AudioCodes OVOC servers")
set(CPACK_PACKAGE_DESCRIPTION
    "xdpguard makes a host permit exactly the ports and directions its policy\n\
documents and nothing else: an XDP program classifies inbound packets, a TC\n\
egress program tracks the flows the host opens, and per-rule counters show\n\
what was passed and dropped. Ships the OVOC single-node policy as\n\
/etc/xdpguard/policy.yaml and a systemd unit, xdpguard@<interface>.service.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binary's actual shared libraries (dpkg-shlibdeps, from
# dpkg-dev): libbpf1, libyaml-cpp0.7, libfmt9, libelf1, zlib1g, libc6, ...
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Added to those: /bin/kill, which the unit's ExecReload runs.
set(CPACK_DEBIAN_PACKAGE_DEPENDS procps)
# The policy is a conffile: dpkg keeps an operator's edits across upgrades and
# removal. The maintainer scripts reload systemd and warn on removal while the
# firewall is still attached.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${XDPGUARD_DEPLOY_DIR}/debian/conffiles
    ${XDPGUARD_DEPLOY_DIR}/debian/postinst
    ${XDPGUARD_DEPLOY_DIR}/debian/prerm
    ${XDPGUARD_DEPLOY_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
